//! Output masks on registration entries (SPIRE's `applyMask` of the Entry API): with a
//! mask, only the fields it selects are populated; the ID is always kept. Without one,
//! the entry is returned whole.

use spire_proto::spire::api::types::{Entry, EntryMask};

/// Invokes `$callback!` with the `Entry`/`EntryMask` fields an update may set (every
/// field but `id`, `revision_number` and `created_at`), followed by `$extra` fields: the
/// one list of masked fields behind output masks and masked updates.
macro_rules! with_updatable_entry_fields {
    ($callback:ident $(, $extra:ident)*) => {
        $callback!(
            spiffe_id,
            parent_id,
            selectors,
            x509_svid_ttl,
            federates_with,
            admin,
            downstream,
            expires_at,
            dns_names,
            store_svid,
            jwt_svid_ttl,
            hint,
            additional_attributes
            $(, $extra)*
        )
    };
}
pub(crate) use with_updatable_entry_fields;

/// `entry` with the fields `mask` does not select cleared (`None` keeps every field).
pub fn apply_entry_mask(mut entry: Entry, mask: Option<&EntryMask>) -> Entry {
    let Some(mask) = mask else {
        return entry;
    };
    macro_rules! clear_unselected {
        ($($field:ident),*) => {
            $(if !mask.$field {
                entry.$field = Default::default();
            })*
        };
    }
    with_updatable_entry_fields!(clear_unselected, revision_number, created_at);
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selected_fields_and_the_id_remain() {
        let entry = Entry {
            id: "id".into(),
            hint: "h".into(),
            admin: true,
            revision_number: 3,
            dns_names: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(apply_entry_mask(entry.clone(), None), entry);
        let masked = apply_entry_mask(
            entry,
            Some(&EntryMask {
                hint: true,
                ..Default::default()
            }),
        );
        assert_eq!(
            masked,
            Entry {
                id: "id".into(),
                hint: "h".into(),
                ..Default::default()
            }
        );
    }
}
