//! Rewrites HCL v1 text into equivalent HCL2 native syntax, for the forms HCL2 refuses.
//!
//! SPIRE reads its files with HCL v1 (`github.com/hashicorp/hcl`), which is looser than
//! the HCL2 syntax hcl-rs parses. Everything SPIRE ships parses directly; this pass is the
//! fallback for hand-written files that use HCL v1 liberties:
//!
//! - commas between the items of a block (`plugin_data { a = 1, b = 2 }`);
//! - several items on one line (`{ address = "x" env = "dev" }`);
//! - one-line blocks holding blocks (`KeyManager "memory" { plugin_data {} }`);
//! - quoted keys and block types (`"NodeAttestor" "x" { }`);
//! - the same attribute twice in a block (HCL v1 keeps the last);
//! - blocks inside object values (`x = { y { z = 1 } }`);
//! - hexadecimal numbers (`0x1f`).
//!
//! The output puts every item on its own line. Comments are dropped. Strings and heredocs
//! are copied as written.

use std::fmt::Write as _;

/// Why the text could not be rewritten (it is not valid HCL v1 either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hcl1Error(pub String);

impl std::fmt::Display for Hcl1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Hcl1Error {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// Raw quoted string, quotes included.
    Str(String),
    /// Raw heredoc, from `<<` to the closing marker, ending with a newline.
    Heredoc(String),
    Num(String),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Assign,
    Comma,
}

fn lex(src: &str) -> Result<Vec<Tok>, Hcl1Error> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(Hcl1Error("unterminated comment".to_owned()));
                }
                i += 2;
            }
            '{' => {
                toks.push(Tok::LBrace);
                i += 1;
            }
            '}' => {
                toks.push(Tok::RBrace);
                i += 1;
            }
            '[' => {
                toks.push(Tok::LBrack);
                i += 1;
            }
            ']' => {
                toks.push(Tok::RBrack);
                i += 1;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '"' => {
                let start = i;
                i += 1;
                let mut depth = 0usize;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err(Hcl1Error("unterminated string".to_owned()));
                    };
                    match ch {
                        '\\' => i += 2,
                        '$' if chars.get(i + 1) == Some(&'{') => {
                            depth += 1;
                            i += 2;
                        }
                        '}' if depth > 0 => {
                            depth -= 1;
                            i += 1;
                        }
                        '"' if depth == 0 => {
                            i += 1;
                            break;
                        }
                        '\n' if depth == 0 => {
                            return Err(Hcl1Error("newline in string".to_owned()));
                        }
                        _ => i += 1,
                    }
                }
                toks.push(Tok::Str(chars[start..i.min(chars.len())].iter().collect()));
            }
            '<' if chars.get(i + 1) == Some(&'<') => {
                let mut j = i + 2;
                let indent = chars.get(j) == Some(&'-');
                if indent {
                    j += 1;
                }
                let marker_start = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let marker: String = chars[marker_start..j].iter().collect();
                if marker.is_empty() {
                    return Err(Hcl1Error("heredoc without a marker".to_owned()));
                }
                while j < chars.len() && chars[j] != '\n' {
                    j += 1;
                }
                j += 1;
                let mut raw = format!("<<{}{}\n", if indent { "-" } else { "" }, marker);
                let mut closed = false;
                while j < chars.len() {
                    let line_start = j;
                    while j < chars.len() && chars[j] != '\n' {
                        j += 1;
                    }
                    let line: String = chars[line_start..j].iter().collect();
                    j += 1;
                    if line.trim() == marker {
                        raw.push_str(line.trim_end());
                        raw.push('\n');
                        closed = true;
                        break;
                    }
                    raw.push_str(&line);
                    raw.push('\n');
                }
                if !closed {
                    return Err(Hcl1Error(format!("heredoc {marker} not closed")));
                }
                toks.push(Tok::Heredoc(raw));
                i = j;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let ch = chars[i];
                    let after_exp = matches!(chars[i - 1], 'e' | 'E')
                        && !chars[start..i].iter().any(|c| *c == 'x' || *c == 'X');
                    if ch.is_ascii_alphanumeric()
                        || ch == '.'
                        || ((ch == '+' || ch == '-') && after_exp)
                    {
                        i += 1;
                    } else {
                        break;
                    }
                }
                toks.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
                {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(Hcl1Error(format!("unexpected character {other:?}"))),
        }
    }
    Ok(toks)
}

fn is_hcl2_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// The content of a raw quoted string if it has no escapes or interpolation.
fn simple_string_content(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') || inner.contains("${") {
        None
    } else {
        Some(inner)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Block,
    Object,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn err<T>(&self, msg: &str) -> Result<T, Hcl1Error> {
        Err(Hcl1Error(format!("{msg} (token {})", self.pos)))
    }

    /// Items until `}` (consumed by the caller) or the end of input.
    fn items(&mut self, ctx: Ctx, depth: usize) -> Result<String, Hcl1Error> {
        let mut items: Vec<(Option<String>, String)> = Vec::new();
        loop {
            match self.peek() {
                None => {
                    if depth > 0 {
                        return self.err("missing `}`");
                    }
                    break;
                }
                Some(Tok::RBrace) => {
                    if depth == 0 {
                        return self.err("unexpected `}`");
                    }
                    break;
                }
                Some(Tok::Comma) => {
                    self.pos += 1;
                }
                Some(_) => items.push(self.item(ctx, depth)?),
            }
        }
        // HCL v1 keeps the last of repeated attributes; HCL2 refuses repeats.
        let mut out = String::new();
        for (idx, (key, text)) in items.iter().enumerate() {
            if let Some(k) = key
                && items[idx + 1..]
                    .iter()
                    .any(|(k2, _)| k2.as_deref() == Some(k.as_str()))
            {
                continue;
            }
            out.push_str(text);
        }
        Ok(out)
    }

    fn key(&mut self) -> Result<String, Hcl1Error> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            Some(Tok::Str(raw)) => match simple_string_content(&raw) {
                Some(s) => Ok(s.to_owned()),
                None => self.err("unsupported key"),
            },
            _ => self.err("expected a key"),
        }
    }

    fn render_key(&self, key: &str, ctx: Ctx) -> Result<String, Hcl1Error> {
        if is_hcl2_ident(key) {
            Ok(key.to_owned())
        } else if ctx == Ctx::Object {
            Ok(quote(key))
        } else {
            self.err("key not expressible in HCL2 block body")
        }
    }

    /// One item; returns `(attribute key, text)`, the key being `None` for blocks.
    fn item(&mut self, ctx: Ctx, depth: usize) -> Result<(Option<String>, String), Hcl1Error> {
        let key = self.key()?;
        if self.peek() == Some(&Tok::Assign) {
            self.pos += 1;
            let value = self.value(depth)?;
            let k = self.render_key(&key, ctx)?;
            return Ok((Some(k.clone()), format!("{k} = {value}\n")));
        }
        let mut labels = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Str(raw)) => labels.push(raw),
                Some(Tok::Ident(s)) => labels.push(quote(&s)),
                Some(Tok::LBrace) => break,
                _ => return self.err("expected `=`, a label or `{`"),
            }
        }
        let body_ctx = if ctx == Ctx::Object {
            Ctx::Object
        } else {
            Ctx::Block
        };
        let body = self.items(body_ctx, depth + 1)?;
        if self.next() != Some(Tok::RBrace) {
            return self.err("missing `}`");
        }
        match ctx {
            Ctx::Block => {
                let mut text = self.render_key(&key, ctx)?;
                for l in &labels {
                    text.push(' ');
                    text.push_str(l);
                }
                let _ = write!(text, " {{\n{body}}}\n");
                Ok((None, text))
            }
            Ctx::Object => {
                // Blocks inside an object value become nested objects.
                let mut inner = format!("{{\n{body}}}");
                for l in labels.iter().rev() {
                    let label = simple_string_content(l).map_or_else(|| l.clone(), quote);
                    inner = format!("{{\n{label} = {inner}\n}}");
                }
                let k = self.render_key(&key, ctx)?;
                Ok((Some(k.clone()), format!("{k} = {inner}\n")))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<String, Hcl1Error> {
        match self.next() {
            Some(Tok::Str(raw)) => Ok(raw),
            Some(Tok::Heredoc(raw)) => Ok(raw.trim_end_matches('\n').to_owned()),
            Some(Tok::Num(n)) => Ok(number(&n)),
            Some(Tok::Ident(s)) if s == "true" || s == "false" => Ok(s),
            Some(Tok::LBrack) => {
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(Tok::RBrack) => {
                            self.pos += 1;
                            break;
                        }
                        Some(Tok::Comma) => self.pos += 1,
                        None => return self.err("missing `]`"),
                        Some(_) => items.push(self.value(depth)?),
                    }
                }
                Ok(format!("[{}]", items.join(", ")))
            }
            Some(Tok::LBrace) => {
                let body = self.items(Ctx::Object, depth + 1)?;
                if self.next() != Some(Tok::RBrace) {
                    return self.err("missing `}`");
                }
                Ok(format!("{{\n{body}}}"))
            }
            _ => self.err("expected a value"),
        }
    }
}

fn number(n: &str) -> String {
    let (neg, digits) = match n.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, n),
    };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        && let Ok(v) = u64::from_str_radix(hex, 16)
    {
        return if neg { format!("-{v}") } else { v.to_string() };
    }
    n.to_owned()
}

/// Rewrites HCL v1 text as HCL2 native syntax (see the module documentation).
pub fn to_hcl2(src: &str) -> Result<String, Hcl1Error> {
    let toks = lex(src)?;
    let mut parser = Parser { toks, pos: 0 };
    parser.items(Ctx::Block, 0)
}
