//! OpenFlow port numbers for pod ports, chosen by the agent instead of ovs-vswitchd.
//!
//! Knowing a port's number before the port exists lets an ADD report the attachment to the
//! controller (and wait for its flows) while ovs-vswitchd is still opening the device, instead of
//! one after the other. That is only safe if the number cannot belong to another port in the
//! meantime: flows for the new pod would then point at someone else's port. Two rules make sure
//! it cannot:
//! - Numbers come from the upper half of the port range, which ovs-vswitchd never assigns on its
//!   own ("reserved for assignment by controllers", ofproto.c `alloc_ofp_port`), so tunnel ports
//!   and ports made by hand never take them.
//! - The agent hands each number to one port at a time and goes round the range before reusing
//!   one, so flows left for a removed port (a DEL while the controller was away) are long gone, or
//!   replaced by the controller, before the number comes back.

use std::collections::BTreeMap;

/// First number the agent requests (OVS assigns automatically only below it).
pub(crate) const FIRST: u32 = *weft_types::ports::POD_PORTS.start();
/// Last usable number (above it are OpenFlow's reserved ports).
pub(crate) const LAST: u32 = *weft_types::ports::POD_PORTS.end();

/// Which numbers are taken, and by which port, on one bridge.
#[derive(Debug, Default)]
pub(crate) struct PortNumbers {
    /// Where the next search starts.
    next: u32,
    taken: BTreeMap<u32, String>,
}

impl PortNumbers {
    /// Starts from the ports the bridge already has (name, ofport or requested ofport); the
    /// search starts after the highest one in range, so a restarted agent does not reuse the
    /// numbers handed out just before it stopped.
    pub(crate) fn new(existing: impl IntoIterator<Item = (String, u32)>) -> Self {
        let taken: BTreeMap<u32, String> = existing
            .into_iter()
            .filter(|(_, n)| (FIRST..=LAST).contains(n))
            .map(|(name, n)| (n, name))
            .collect();
        let next = match taken.keys().next_back() {
            Some(&n) if n < LAST => n + 1,
            _ => FIRST,
        };
        PortNumbers { next, taken }
    }

    /// A free number for port `name`, or `None` when all 32,512 are taken.
    pub(crate) fn take(&mut self, name: &str) -> Option<u32> {
        let size = LAST - FIRST + 1;
        for i in 0..size {
            let n = FIRST + (self.next - FIRST + i) % size;
            if let std::collections::btree_map::Entry::Vacant(e) = self.taken.entry(n) {
                e.insert(name.to_string());
                self.next = if n == LAST { FIRST } else { n + 1 };
                return Some(n);
            }
        }
        None
    }

    /// Frees whatever number port `name` holds (nothing when it holds none).
    pub(crate) fn release(&mut self, name: &str) {
        self.taken.retain(|_, holder| holder != name);
    }

    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.taken.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_in_the_controller_half_and_unique() {
        let mut p = PortNumbers::new([("wf1".to_string(), 32769), ("tun".to_string(), 3)]);
        // Starts after the highest taken number; the low one (OVS's own half) is ignored.
        assert_eq!(p.take("a"), Some(32770));
        assert_eq!(p.take("b"), Some(32771));
        assert_eq!(p.taken(), 3);
    }

    #[test]
    fn released_numbers_come_back_only_after_a_full_round() {
        let mut p = PortNumbers::new([]);
        let a = p.take("a").unwrap();
        p.release("a");
        let b = p.take("b").unwrap();
        assert_ne!(a, b, "a freed number is not reused at once");
        assert_eq!(b, a + 1);
        p.release("b");
        // Go round the whole range: the first number free again is `a`'s, after LAST.
        let mut last = 0;
        for i in 0..(LAST - FIRST - 1) {
            last = p.take(&format!("p{i}")).unwrap();
        }
        assert_eq!(last, LAST);
        assert_eq!(p.take("again"), Some(FIRST));
    }

    #[test]
    fn skips_taken_numbers_and_runs_out_cleanly() {
        let mut p = PortNumbers::new([("x".to_string(), LAST)]);
        assert_eq!(p.take("a"), Some(FIRST), "wraps after LAST");
        let mut n = 2;
        while p.take(&format!("p{n}")).is_some() {
            n += 1;
        }
        assert_eq!(p.taken() as u32, LAST - FIRST + 1);
        p.release("x");
        assert_eq!(p.take("y"), Some(LAST));
        assert_eq!(p.take("z"), None);
    }
}
