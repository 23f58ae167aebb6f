//! The LocalAuthority API and CLI over the real admin socket, and the CA journal across
//! restarts: the server runs in-process on a temp dir (SQLite, self-signed CA).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Keys, Setup, TestServer, cli};

use std::path::Path;
use std::time::Duration;

use spire_proto::spire::api::server::localauthority::v1 as lapb;
use spire_proto::spire::api::server::localauthority::v1::local_authority_client::LocalAuthorityClient;
use spire_proto::spire::api::types;
use tonic::Code;
use tonic::transport::Channel;

/// A self-signed (no UpstreamAuthority, so X.509 taint is allowed) server on `dir`.
async fn start(dir: &Path, disk_keys: bool) -> TestServer {
    TestServer::start_with(Setup {
        dir: Some(dir),
        keys: if disk_keys { Keys::Disk } else { Keys::Memory },
        upstream: false,
        ..Setup::default()
    })
    .await
}

impl TestServer {
    fn authority(&self) -> LocalAuthorityClient<Channel> {
        LocalAuthorityClient::new(self.channel())
    }

    async fn x509_state(&self) -> lapb::GetX509AuthorityStateResponse {
        self.authority()
            .get_x509_authority_state(lapb::GetX509AuthorityStateRequest::default())
            .await
            .unwrap()
            .into_inner()
    }

    async fn jwt_state(&self) -> lapb::GetJwtAuthorityStateResponse {
        self.authority()
            .get_jwt_authority_state(lapb::GetJwtAuthorityStateRequest::default())
            .await
            .unwrap()
            .into_inner()
    }
}

/// The lowercase hex SKID of a DER certificate.
fn skid(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    for ext in cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) =
            ext.parsed_extension()
        {
            return id.0.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
    panic!("certificate without SKID");
}

/// The bundle's X.509 authority with authority ID `id`, if any.
fn root_by_id<'a>(bundle: &'a types::Bundle, id: &str) -> Option<&'a types::X509Certificate> {
    bundle.x509_authorities.iter().find(|r| skid(&r.asn1) == id)
}

fn jwt_by_id<'a>(bundle: &'a types::Bundle, id: &str) -> Option<&'a types::JwtKey> {
    bundle.jwt_authorities.iter().find(|k| k.key_id == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn x509_prepare_activate_taint_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), false).await;
    let mut la = server.authority();

    let state = server.x509_state().await;
    let first = state.active.clone().expect("an active authority");
    assert!(state.prepared.is_none() && state.old.is_none());
    assert!(first.upstream_authority_subject_key_id.is_empty());
    assert!(root_by_id(&server.bundle().await, &first.authority_id).is_some());

    // Nothing prepared: activation, taint and revoke are refused.
    let err = la
        .activate_x509_authority(lapb::ActivateX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "unexpected authority ID");
    let err = la
        .taint_x509_authority(lapb::TaintX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "unable to taint current local authority");

    // Prepare: published at once, not yet signing.
    let prepared = la
        .prepare_x509_authority(lapb::PrepareX509AuthorityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .prepared_authority
        .unwrap();
    assert_ne!(prepared.authority_id, first.authority_id);
    let state = server.x509_state().await;
    assert_eq!(state.active.as_ref(), Some(&first));
    assert_eq!(state.prepared.as_ref(), Some(&prepared));
    let bundle = server.bundle().await;
    assert!(root_by_id(&bundle, &prepared.authority_id).is_some());
    assert!(root_by_id(&bundle, &first.authority_id).is_some());

    // A prepared authority cannot be tainted; an unknown ID cannot be activated.
    let err = la
        .taint_x509_authority(lapb::TaintX509AuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("only Old local authorities can be tainted")
    );
    let err = la
        .activate_x509_authority(lapb::ActivateX509AuthorityRequest {
            authority_id: "00ff".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Activate: the prepared one signs, the first one is old.
    let activated = la
        .activate_x509_authority(lapb::ActivateX509AuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .activated_authority
        .unwrap();
    assert_eq!(activated, prepared);
    let state = server.x509_state().await;
    assert_eq!(state.active.as_ref(), Some(&prepared));
    assert_eq!(state.old.as_ref(), Some(&first));
    assert!(state.prepared.is_none());

    // Revoking an untainted authority fails; the current one cannot be used.
    let err = la
        .revoke_x509_authority(lapb::RevokeX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("untainted"), "{}", err.message());
    let err = la
        .revoke_x509_authority(lapb::RevokeX509AuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid authority ID: unable to use current authority"
    );
    let err = la
        .taint_x509_authority(lapb::TaintX509AuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Taint the old one: marked in the bundle.
    let before = server.bundle().await.sequence_number;
    let tainted = la
        .taint_x509_authority(lapb::TaintX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tainted_authority
        .unwrap();
    assert_eq!(tainted, first);
    let bundle = server.bundle().await;
    assert!(bundle.sequence_number > before);
    assert!(root_by_id(&bundle, &first.authority_id).unwrap().tainted);
    assert!(!root_by_id(&bundle, &prepared.authority_id).unwrap().tainted);
    let err = la
        .taint_x509_authority(lapb::TaintX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);

    // Revoke it: gone from the bundle, and not published again.
    let revoked = la
        .revoke_x509_authority(lapb::RevokeX509AuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .revoked_authority
        .unwrap();
    assert_eq!(revoked.authority_id, first.authority_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bundle = server.bundle().await;
    assert!(root_by_id(&bundle, &first.authority_id).is_none());
    assert!(root_by_id(&bundle, &prepared.authority_id).is_some());

    // The upstream authority RPCs need an UpstreamAuthority.
    let err = la
        .taint_x509_upstream_authority(lapb::TaintX509UpstreamAuthorityRequest {
            subject_key_id: "00ff".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "upstream authority is not configured");
    let err = la
        .get_wit_authority_state(lapb::GetWitAuthorityStateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_prepare_activate_taint_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), false).await;
    let mut la = server.authority();

    let first = server.jwt_state().await.active.expect("an active JWT key");
    assert!(jwt_by_id(&server.bundle().await, &first.authority_id).is_some());

    let prepared = la
        .prepare_jwt_authority(lapb::PrepareJwtAuthorityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .prepared_authority
        .unwrap();
    assert!(jwt_by_id(&server.bundle().await, &prepared.authority_id).is_some());
    assert_eq!(server.jwt_state().await.prepared.as_ref(), Some(&prepared));

    // A prepared key cannot be revoked; the current one cannot be tainted.
    let err = la
        .revoke_jwt_authority(lapb::RevokeJwtAuthorityRequest {
            authority_id: prepared.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid authority ID: unable to use a prepared key"
    );
    let err = la
        .taint_jwt_authority(lapb::TaintJwtAuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "unable to taint current local authority");

    la.activate_jwt_authority(lapb::ActivateJwtAuthorityRequest {
        authority_id: prepared.authority_id.clone(),
    })
    .await
    .unwrap();
    let state = server.jwt_state().await;
    assert_eq!(state.active.as_ref(), Some(&prepared));
    assert_eq!(state.old.as_ref(), Some(&first));

    let err = la
        .revoke_jwt_authority(lapb::RevokeJwtAuthorityRequest {
            authority_id: first.authority_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);

    la.taint_jwt_authority(lapb::TaintJwtAuthorityRequest {
        authority_id: first.authority_id.clone(),
    })
    .await
    .unwrap();
    let bundle = server.bundle().await;
    assert!(jwt_by_id(&bundle, &first.authority_id).unwrap().tainted);
    assert!(!jwt_by_id(&bundle, &prepared.authority_id).unwrap().tainted);

    la.revoke_jwt_authority(lapb::RevokeJwtAuthorityRequest {
        authority_id: first.authority_id.clone(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bundle = server.bundle().await;
    assert!(jwt_by_id(&bundle, &first.authority_id).is_none());
    assert!(jwt_by_id(&bundle, &prepared.authority_id).is_some());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_show_and_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), false).await;
    let active = server.x509_state().await.active.unwrap();

    let (ok, out, err) = cli(&server, &["localauthority", "x509", "show"]).await;
    assert!(ok, "{err}");
    let expires = time::OffsetDateTime::from_unix_timestamp(active.expires_at).unwrap();
    let expires = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        expires.year(),
        u8::from(expires.month()),
        expires.day(),
        expires.hour(),
        expires.minute(),
        expires.second()
    );
    assert_eq!(
        out,
        format!(
            "Active X.509 authority:\n  Authority ID: {}\n  Expires at: {expires}\n  \
             Upstream authority ID: No upstream authority\n\n\
             Prepared X.509 authority:\n  No prepared X.509 authority found\n\n\
             Old X.509 authority:\n  No old X.509 authority found\n",
            active.authority_id
        )
    );

    let (ok, out, err) = cli(&server, &["localauthority", "x509", "prepare"]).await;
    assert!(ok, "{err}");
    let prepared = server.x509_state().await.prepared.unwrap();
    assert!(out.starts_with(&format!(
        "Prepared X.509 authority:\n  Authority ID: {}\n  Expires at: ",
        prepared.authority_id
    )));

    let (ok, _, err) = cli(&server, &["localauthority", "x509", "activate"]).await;
    assert!(!ok);
    assert_eq!(err.trim(), "Error: an authority ID is required");
    let (ok, _, err) = cli(
        &server,
        &["localauthority", "x509", "taint", "-authorityID", "00ff"],
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "Error: could not taint X.509 authority: rpc error: code = InvalidArgument desc = unexpected authority ID"
    );

    let (ok, out, err) = cli(&server, &["localauthority", "jwt", "show"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("Active JWT authority:\n  Authority ID: "));
    assert!(!out.contains("Upstream"));
    assert!(out.ends_with("Old JWT authority:\n  No old JWT authority found\n"));

    let (ok, _, err) = cli(
        &server,
        &["upstreamauthority", "taint", "-subjectKeyID", "ab"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("upstream authority is not configured"),
        "{err}"
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_key_manager_keeps_the_ca_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let x509 = server.x509_state().await;
    let jwt = server.jwt_state().await;
    let bundle = server.bundle().await;
    server.stop().await;

    let server = start(dir.path(), true).await;
    assert_eq!(server.x509_state().await, x509);
    assert_eq!(server.jwt_state().await, jwt);
    let again = server.bundle().await;
    assert_eq!(again.x509_authorities, bundle.x509_authorities);
    assert_eq!(again.jwt_authorities, bundle.jwt_authorities);
    assert_eq!(again.sequence_number, bundle.sequence_number);

    // A prepared authority is kept too.
    let prepared = server
        .authority()
        .prepare_x509_authority(lapb::PrepareX509AuthorityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .prepared_authority
        .unwrap();
    server.stop().await;
    let server = start(dir.path(), true).await;
    let state = server.x509_state().await;
    assert_eq!(state.active, x509.active);
    assert_eq!(state.prepared, Some(prepared));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_key_manager_mints_a_new_ca_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), false).await;
    let first = server.x509_state().await.active.unwrap();
    server.stop().await;

    let server = start(dir.path(), false).await;
    let second = server.x509_state().await.active.unwrap();
    assert_ne!(first.authority_id, second.authority_id);
    let bundle = server.bundle().await;
    assert!(root_by_id(&bundle, &first.authority_id).is_some());
    assert!(root_by_id(&bundle, &second.authority_id).is_some());
    server.stop().await;
}
