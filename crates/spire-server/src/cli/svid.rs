//! `spire-server svid revoke` and `spire-server svid list-revoked` (a spire-rs
//! extension; SPIRE has no per-SVID revocation): revoke single X.509-SVIDs by serial
//! number through `spirers.server.revocation.v1.Revocation` and list the revocations.
//! Agents then hand workloads CRLs that list the serial (docs/revocation.md).

use spire_common::cli::rfc3339;
use spire_proto::spirers::server::revocation::v1::revocation_client::RevocationClient;
use spire_proto::spirers::server::revocation::v1::{
    ListRevokedRequest, RevokeX509svidRequest, RevokedX509svid,
};

use super::{CliError, OutputArgs, OutputFormat, SocketArgs, print_json};
use crate::api::revocation::normalize_hex_serial;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SvidCommand {
    /// Revokes an X.509-SVID by serial number; agents deliver the updated CRLs to
    /// workloads at once and re-issue the SVID if they hold it.
    Revoke(RevokeArgs),
    /// Lists the revoked X.509-SVID serial numbers.
    #[command(name = "list-revoked")]
    ListRevoked(ListArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Serial number of the X.509-SVID: decimal digits, or hexadecimal with a 0x
    /// prefix, with ':' separators (as openssl prints it), or containing a-f.
    #[arg(long = "serial", default_value = "")]
    serial: String,
    /// When the revocation may be pruned (RFC 3339 time or Unix seconds); by default
    /// the expiry of the server's latest X.509 CA, which no SVID outlives.
    #[arg(long = "expiresAt", default_value = "")]
    expires_at: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: OutputArgs,
}

impl SvidCommand {
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            SvidCommand::Revoke(args) => revoke(args).await,
            SvidCommand::ListRevoked(args) => list(args).await,
        }
    }
}

/// A decimal string as big-endian bytes (no leading zero bytes).
fn decimal_to_bytes(digits: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = Vec::new();
    for d in digits.bytes().map(|b| u32::from(b - b'0')) {
        let mut carry = d;
        for byte in bytes.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    bytes
}

/// The serial in the form the server stores (lowercase hex without leading zeros).
/// All-digit input is decimal (how SPIRE prints serials, e.g. `agent show`); hex needs
/// a `0x` prefix, `:` separators or a letter a-f.
pub(crate) fn parse_serial(input: &str) -> Result<String, CliError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(CliError(
            "a serial number must be specified (-serial)".into(),
        ));
    }
    let invalid = |e: &dyn std::fmt::Display| CliError(format!("invalid -serial: {e}"));
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let hex: String = decimal_to_bytes(s)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return normalize_hex_serial(if hex.is_empty() { "0" } else { &hex }).map_err(|_| {
            invalid(&format!(
                "{s:?} is not a valid serial number (it must be between 1 and 20 bytes)"
            ))
        });
    }
    normalize_hex_serial(s).map_err(|e| invalid(&e))
}

/// `-expiresAt` as Unix seconds (0 when not given).
fn parse_expires_at(input: &str) -> Result<i64, CliError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            CliError(format!(
                "invalid -expiresAt {s:?}: use an RFC 3339 time (2030-01-02T15:04:05Z) or Unix seconds"
            ))
        })
}

fn print_revoked(r: &RevokedX509svid) {
    println!("Serial         : {}", r.serial);
    println!("Revoked at     : {}", rfc3339(r.revoked_at));
    println!("Expires at     : {}", rfc3339(r.expires_at));
}

async fn revoke(args: RevokeArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let serial = parse_serial(&args.serial)?;
    let expires_at = parse_expires_at(&args.expires_at)?;
    let response = RevocationClient::new(args.socket.channel()?)
        .revoke_x509svid(RevokeX509svidRequest { serial, expires_at })
        .await
        .map_err(CliError::rpc("unable to revoke X509-SVID"))?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&response);
    }
    let revoked = response
        .revoked
        .ok_or_else(|| CliError("server response missing the revocation".into()))?;
    println!("Revoked X509-SVID:");
    print_revoked(&revoked);
    Ok(())
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let format = args.output.format()?;
    let response = RevocationClient::new(args.socket.channel()?)
        .list_revoked_x509svi_ds(ListRevokedRequest {})
        .await
        .map_err(CliError::rpc("unable to list revoked X509-SVIDs"))?
        .into_inner();
    if format == OutputFormat::Json {
        return print_json(&response);
    }
    if response.revoked.is_empty() {
        println!("No revoked X509-SVIDs found");
        return Ok(());
    }
    println!("Found {} revoked X509-SVID(s)", response.revoked.len());
    for r in &response.revoked {
        println!();
        print_revoked(r);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn serials_parse_as_decimal_or_hex() {
        assert_eq!(parse_serial("255").unwrap(), "ff");
        assert_eq!(parse_serial("0x00ff").unwrap(), "ff");
        assert_eq!(parse_serial("ab:cd").unwrap(), "abcd");
        assert_eq!(parse_serial("1F").unwrap(), "1f");
        // 2^128 - 1, the largest serial SPIRE draws.
        assert_eq!(
            parse_serial("340282366920938463463374607431768211455").unwrap(),
            "f".repeat(32)
        );
        for bad in ["", "0", "00", "12x", "0x", &"9".repeat(60)] {
            assert!(parse_serial(bad).is_err(), "{bad}");
        }
        assert!(
            parse_serial("12x")
                .unwrap_err()
                .0
                .contains("not hexadecimal")
        );
    }

    #[test]
    fn expiry_accepts_rfc3339_and_unix_seconds() {
        assert_eq!(parse_expires_at("").unwrap(), 0);
        assert_eq!(parse_expires_at("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_expires_at("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert!(parse_expires_at("tomorrow").is_err());
    }
}
