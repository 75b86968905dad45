//! How much user data of each kind an export wrote or an import created,
//! and the one way both commands report it.

/// Counts per kind of user data (XEP-0227 §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataCounts {
    /// SCRAM credential sets (one per account and hash function).
    pub credentials: u64,
    /// Roster items.
    pub roster_items: u64,
    /// Unanswered inbound subscription requests.
    pub pending_in: u64,
    /// vCards.
    pub vcards: u64,
    /// Private XML fragments.
    pub private: u64,
    /// Offline messages.
    pub offline: u64,
    /// PEP nodes (XEP-0227 §4.10).
    pub pep_nodes: u64,
    /// PEP items.
    pub pep_items: u64,
}

impl std::fmt::Display for DataCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} SCRAM credential(s), {} roster item(s), {} pending subscription request(s), {} vCard(s), \
             {} private XML fragment(s), {} offline message(s), {} PEP node(s), {} PEP item(s)",
            self.credentials,
            self.roster_items,
            self.pending_in,
            self.vcards,
            self.private,
            self.offline,
            self.pep_nodes,
            self.pep_items
        )
    }
}
