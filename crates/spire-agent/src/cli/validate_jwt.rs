//! `spire-agent api validate jwt` (agent.md §7.3): `ValidateJWTSVID`, printed as SPIRE
//! prints it.

use std::path::PathBuf;
use std::time::Duration;

use spire_proto::workload::ValidateJwtsvidRequest;

use super::CliError;
use super::fetch_jwt::{deadline_exceeded, with_header, workload_client};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ValidateJwtArgs {
    /// Expected audience value.
    #[arg(long = "audience", default_value = "")]
    audience: String,
    /// JWT SVID.
    #[arg(long = "svid", default_value = "")]
    svid: String,
    /// Path to the SPIRE Agent API socket.
    #[arg(long = "socketPath", default_value = crate::endpoints::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
    /// Time to wait for a response.
    #[arg(long = "timeout", default_value = "5s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// Desired output format (pretty, json).
    #[arg(long = "output", default_value = "pretty")]
    output: String,
}

pub(crate) async fn run(args: ValidateJwtArgs) -> Result<(), CliError> {
    if args.audience.is_empty() {
        return Err(CliError("audience must be specified".into()));
    }
    if args.svid.is_empty() {
        return Err(CliError("svid must be specified".into()));
    }
    let json = super::wants_json(&args.output)?;
    let mut client = workload_client(&args.socket_path)?;
    let request = with_header(
        ValidateJwtsvidRequest {
            audience: args.audience,
            svid: args.svid,
        },
        args.timeout,
    );
    let response = tokio::time::timeout(args.timeout, client.validate_jwtsvid(request))
        .await
        .map_err(|_| deadline_exceeded())?
        .map_err(|status| {
            if status.code() == tonic::Code::InvalidArgument {
                CliError(format!("SVID is not valid: {}", status.message()))
            } else {
                CliError(format!(
                    "unable to validate JWT SVID: {}",
                    CliError::from(status).0
                ))
            }
        })?
        .into_inner();
    if json {
        super::print_json_value(&super::json_value(&response)?);
        return Ok(());
    }
    let claims = response
        .claims
        .map(|c| struct_to_json(&c))
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    println!("SVID is valid.");
    println!("SPIFFE ID : {}", response.spiffe_id);
    println!("Claims    : {claims}");
    Ok(())
}

/// A protobuf `Struct` as compact JSON (what Go's protojson prints; whole doubles are
/// printed as integers, as protojson does).
fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;

    #[test]
    fn claims_print_as_compact_json() {
        let mut s = prost_types::Struct::default();
        s.fields.insert(
            "aud".into(),
            prost_types::Value {
                kind: Some(Kind::ListValue(prost_types::ListValue {
                    values: vec![prost_types::Value {
                        kind: Some(Kind::StringValue("foo".into())),
                    }],
                })),
            },
        );
        s.fields.insert(
            "exp".into(),
            prost_types::Value {
                kind: Some(Kind::NumberValue(1_700_000_000.0)),
            },
        );
        assert_eq!(
            struct_to_json(&s).to_string(),
            r#"{"aud":["foo"],"exp":1700000000}"#
        );
    }
}
