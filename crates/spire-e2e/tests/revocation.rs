//! Per-SVID revocation end to end: a workload streams FetchX509SVID from a real agent,
//! the operator revokes its SVID's serial with `spire-server svid revoke`, and the
//! stream delivers a CRL listing that serial, signed by the CA that issued the SVID
//! (which chains to the bundle in the same response), plus a fresh SVID with another
//! serial. rustls-webpki, as a relying party would, rejects the old SVID as revoked
//! with that CRL and accepts the new one.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use spire_e2e::workload::{next_message, open_x509_stream};
use spire_e2e::{Quickstart, stderr, stdout};
use spire_proto::workload::X509svidResponse;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";

/// The certificates of a DER chain or bundle (concatenated DER).
fn split_der(mut der: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    while !der.is_empty() {
        let (rest, _) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        out.push(CertificateDer::from(der[..der.len() - rest.len()].to_vec()));
        der = rest;
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.trim_start_matches('0').to_owned()
}

/// The leaf's serial as (decimal, lowercase hex without leading zeros).
fn serial_of(response: &X509svidResponse) -> Result<(String, String), String> {
    let svid = response.svids.first().ok_or("no SVID")?;
    let chain = split_der(&svid.x509_svid)?;
    let (_, leaf) = X509Certificate::from_der(chain[0].as_ref()).map_err(|e| e.to_string())?;
    Ok((leaf.serial.to_string(), hex(leaf.raw_serial())))
}

/// The serials (hex) a response's CRLs list.
fn crl_serials(response: &X509svidResponse) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for der in &response.crl {
        let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| e.to_string())?;
        out.extend(crl.iter_revoked_certificates().map(|r| hex(r.raw_serial())));
    }
    Ok(out)
}

/// Validates the response's SVID as a relying party would: path to the bundle's
/// roots, with the response's CRLs checked for the leaf.
fn validate(
    chain_der: &[u8],
    bundle_der: &[u8],
    crls_der: &[Vec<u8>],
) -> Result<Result<(), webpki::Error>, String> {
    let chain = split_der(chain_der)?;
    let roots = split_der(bundle_der)?;
    let anchors: Vec<_> = roots
        .iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .map(|a| a.to_owned())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let crls: Vec<webpki::CertRevocationList<'_>> = crls_der
        .iter()
        .map(|d| {
            webpki::BorrowedCertRevocationList::from_der(d)
                .map(Into::into)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let options = webpki::RevocationOptionsBuilder::new(&crl_refs)
        .map_err(|_| "no CRLs".to_owned())?
        .with_depth(webpki::RevocationCheckDepth::EndEntity)
        .with_status_policy(webpki::UnknownStatusPolicy::Deny)
        .build();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| e.to_string())?;
    Ok(leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &chain[1..],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            Some(options),
            None,
        )
        .map(|_| ()))
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_svid_is_listed_in_the_crl_and_replaced() -> TestResult {
    let qs = Quickstart::start("");
    let (_agent, socket) = qs.start_attested_agent(AGENT_ID);
    qs.create_uid_entry(AGENT_ID, "spiffe://example.org/revocable", &[]);

    // Until the agent has synced the entry, the stream answers "no identity issued".
    let (mut stream, first) = open_x509_stream(&socket, Duration::from_secs(60))
        .await
        .map_err(|e| format!("no X509-SVID within 60 s: {e}"))?;
    let (decimal, old_hex) = serial_of(&first)?;
    // The agent serves the server's CRLs from the start; nothing is revoked yet.
    assert!(!first.crl.is_empty(), "no CRL in the first response");
    assert!(crl_serials(&first)?.is_empty());
    let old = first.svids[0].clone();
    assert_eq!(
        validate(&old.x509_svid, &old.bundle, &first.crl)?,
        Ok(()),
        "the SVID validates with the empty CRLs"
    );

    // The operator revokes it by its decimal serial (as SPIRE prints serials).
    let out = qs.server_cli(&["svid", "revoke", "-serial", &decimal]);
    assert!(out.status.success(), "svid revoke: {}", stderr(&out));
    assert!(stdout(&out).contains(&old_hex), "{}", stdout(&out));

    // The stream delivers the CRL listing the serial and a new SVID.
    let mut saw_crl = None;
    let replaced = next_message(
        &mut stream,
        Duration::from_secs(60),
        "CRL and new SVID",
        |message| {
            if saw_crl.is_none() && crl_serials(message)?.contains(&old_hex) {
                saw_crl = Some(message.crl.clone());
            }
            Ok(saw_crl.is_some() && serial_of(message)?.1 != old_hex)
        },
    )
    .await?;
    let crls = saw_crl.ok_or("no CRL")?;
    assert_eq!(replaced.crl, crls, "the new SVID comes with the same CRLs");

    // The CRL is the issuing CA's: its issuer is the SVID's issuer, its AKI the CA's
    // SKI, and that CA chains to the bundle in the response.
    let old_chain = split_der(&old.x509_svid)?;
    let (_, old_leaf) = X509Certificate::from_der(old_chain[0].as_ref())?;
    let (_, ca) = X509Certificate::from_der(old_chain[1].as_ref())?;
    let issuing = crls
        .iter()
        .map(|d| CertificateRevocationList::from_der(d).map(|(_, c)| c))
        .collect::<Result<Vec<_>, _>>()?;
    let crl = issuing
        .iter()
        .find(|c| c.issuer().as_raw() == old_leaf.issuer().as_raw())
        .ok_or("no CRL from the SVID's issuer")?;
    assert_eq!(crl.issuer().as_raw(), ca.subject().as_raw());
    let ski = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .ok_or("CA without SKI")?;
    let aki = crl
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .ok_or("CRL without AKI")?;
    assert_eq!(aki, ski);
    assert!(crl.crl_number().is_some());
    assert!(crl.next_update().is_some());

    // A relying party with these CRLs rejects the old SVID as revoked (so the CRL's
    // signature verified with the issuing CA's key) and accepts the new one.
    assert_eq!(
        validate(&old.x509_svid, &old.bundle, &crls)?,
        Err(webpki::Error::CertRevoked)
    );
    let new = &replaced.svids[0];
    assert_eq!(validate(&new.x509_svid, &new.bundle, &crls)?, Ok(()));

    // The revocation is listed.
    let out = qs.server_cli(&["svid", "list-revoked"]);
    assert!(out.status.success(), "svid list-revoked: {}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("Serial         : {old_hex}")),
        "{}",
        stdout(&out)
    );
    Ok(())
}
