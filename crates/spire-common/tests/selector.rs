//! Selector parsing and set semantics.

use spire_common::selector::{Selector, SelectorError, SelectorSet, dedupe};

#[test]
fn splits_at_the_first_colon() {
    let s = Selector::parse("unix:uid:1000").expect("parse");
    assert_eq!(s.r#type, "unix");
    assert_eq!(s.value, "uid:1000");
    assert_eq!(s.to_string(), "unix:uid:1000");

    let s: Selector = "docker:label:com.example:a:b".parse().expect("parse");
    assert_eq!(s.r#type, "docker");
    assert_eq!(s.value, "label:com.example:a:b");

    let s = Selector::parse("spiffe_id:spiffe://example.org/agent").expect("parse");
    assert_eq!(s.value, "spiffe://example.org/agent");
}

#[test]
fn errors() {
    assert_eq!(
        Selector::parse("unix"),
        Err(SelectorError::MissingColon("unix".to_owned()))
    );
    assert_eq!(
        Selector::parse("unix").map_err(|e| e.to_string()),
        Err("selector \"unix\" must be formatted as type:value".to_owned())
    );
    assert_eq!(Selector::parse(":uid:0"), Err(SelectorError::EmptyType));
    assert_eq!(Selector::parse("unix:"), Err(SelectorError::EmptyValue));
    assert_eq!(
        Selector::parse(""),
        Err(SelectorError::MissingColon(String::new()))
    );
    assert_eq!(
        SelectorError::EmptyType.to_string(),
        "missing selector type"
    );
    assert_eq!(
        SelectorError::EmptyValue.to_string(),
        "missing selector value"
    );
}

#[test]
fn ordering_and_dedupe() {
    let mut v = vec![
        Selector::parse("unix:uid:1000").expect("p"),
        Selector::parse("k8s:ns:default").expect("p"),
        Selector::parse("unix:gid:0").expect("p"),
        Selector::parse("unix:uid:1000").expect("p"),
    ];
    dedupe(&mut v);
    let strings: Vec<String> = v.iter().map(ToString::to_string).collect();
    assert_eq!(strings, ["k8s:ns:default", "unix:gid:0", "unix:uid:1000"]);
}

#[test]
fn subset_matching() {
    let workload =
        SelectorSet::parse_all(["unix:uid:1000", "unix:gid:1000", "unix:user:alice"]).expect("p");
    let entry = SelectorSet::parse_all(["unix:uid:1000"]).expect("p");
    let entry2 = SelectorSet::parse_all(["unix:uid:1000", "unix:gid:1000"]).expect("p");
    let other = SelectorSet::parse_all(["unix:uid:1000", "k8s:ns:default"]).expect("p");
    assert!(entry.is_subset_of(&workload));
    assert!(entry2.is_subset_of(&workload));
    assert!(!other.is_subset_of(&workload));
    assert!(workload.is_superset_of(&entry));
    assert!(SelectorSet::new().is_subset_of(&workload));

    let dup = SelectorSet::parse_all(["a:b", "a:b", "a:c"]).expect("p");
    assert_eq!(dup.len(), 2);
    assert_eq!(dup.of_type("a").count(), 2);
    assert!(SelectorSet::parse_all(["bad"]).is_err());
}
