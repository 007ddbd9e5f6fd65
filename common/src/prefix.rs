//! Small sets of IPv4 prefixes held inline in a map value and matched
//! without branches: cheaper than an LPM trie lookup (a call walking nodes
//! scattered in memory) for the few CIDRs a network has. More than
//! [`INLINE_PREFIXES`], or a set never written, sends the programs to the
//! tries (`lb_slow_cidrs`, `lb_cluster`), which hold every set in full.

/// Index 0 -> [`Prefixes`].
pub const MAP_PREFIXES: &str = "lb_prefixes";
pub const INLINE_PREFIXES: usize = 8;

/// `net` and `mask` in network byte order, as the programs read addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefix {
    pub net: u32,
    pub mask: u32,
}

/// A prefix no address matches (`addr & 0 != 1`): the unused entries.
const NONE: Prefix = Prefix { net: 1, mask: 0 };

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixSet {
    /// 1: `prefixes` is the whole set; 0: ask the trie.
    pub inline: u32,
    pub prefixes: [Prefix; INLINE_PREFIXES],
}

/// The sets of the network's tries, inline.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefixes {
    /// As `lb_slow_cidrs`.
    pub slow: PrefixSet,
    /// As `lb_cluster`.
    pub cluster: PrefixSet,
}

impl PrefixSet {
    /// The set of `(network address in network byte order, prefix length)`s;
    /// the trie's business when there are too many.
    pub fn new(cidrs: &[(u32, u8)]) -> PrefixSet {
        let mut set = PrefixSet {
            inline: u32::from(cidrs.len() <= INLINE_PREFIXES),
            prefixes: [NONE; INLINE_PREFIXES],
        };
        if set.inline == 0 {
            return PrefixSet::default();
        }
        for (slot, &(net, len)) in set.prefixes.iter_mut().zip(cidrs) {
            let mask = match len {
                0 => 0,
                len => {
                    u32::from_ne_bytes((u32::MAX << (32 - u32::from(len.min(32)))).to_be_bytes())
                }
            };
            *slot = Prefix {
                net: net & mask,
                mask,
            };
        }
        set
    }

    /// Whether `addr` (network byte order) is in the set; `None`: ask the
    /// trie.
    #[inline(always)]
    pub fn contains(&self, addr: u32) -> Option<bool> {
        if self.inline == 0 {
            return None;
        }
        let mut found = false;
        for p in &self.prefixes {
            found |= addr & p.mask == p.net;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: [u8; 4]) -> u32 {
        u32::from_ne_bytes(a)
    }

    #[test]
    fn sets_match_their_prefixes_only() {
        let set = PrefixSet::new(&[(key([10, 96, 0, 0]), 12), (key([192, 168, 7, 9]), 32)]);
        assert_eq!(set.contains(key([10, 96, 0, 10])), Some(true));
        assert_eq!(set.contains(key([10, 111, 255, 255])), Some(true));
        assert_eq!(set.contains(key([10, 112, 0, 0])), Some(false));
        assert_eq!(set.contains(key([192, 168, 7, 9])), Some(true));
        assert_eq!(set.contains(key([192, 168, 7, 8])), Some(false));
        // Unused entries match nothing, not even 0.0.0.0 or the broadcast.
        assert_eq!(set.contains(0), Some(false));
        assert_eq!(set.contains(u32::MAX), Some(false));
        assert_eq!(
            PrefixSet::new(&[]).contains(key([10, 0, 0, 1])),
            Some(false)
        );
        // Host bits in the network address are ignored, as the trie does.
        let set = PrefixSet::new(&[(key([10, 244, 3, 1]), 16)]);
        assert_eq!(set.contains(key([10, 244, 200, 1])), Some(true));
        // The default route.
        assert_eq!(
            PrefixSet::new(&[(0, 0)]).contains(key([8, 8, 8, 8])),
            Some(true)
        );
    }

    #[test]
    fn unwritten_or_large_sets_ask_the_trie() {
        assert_eq!(PrefixSet::default().contains(1), None);
        let many: [(u32, u8); INLINE_PREFIXES + 1] =
            core::array::from_fn(|i| (key([10, i as u8, 0, 0]), 16));
        assert_eq!(PrefixSet::new(&many).contains(key([10, 0, 0, 1])), None);
        assert!(PrefixSet::new(&many[..INLINE_PREFIXES])
            .contains(key([10, 7, 0, 1]))
            .unwrap());
    }
}
