//! OpenFlow 1.3 port numbers as Weft uses them.
//!
//! Pod ports take numbers from the upper half of the range, which ovs-vswitchd never assigns on
//! its own ("reserved for assignment by controllers", ofproto.c `alloc_ofp_port`): the agent can
//! then choose a pod port's number before the port exists, and tunnel or hand-made ports never
//! collide with it.

use std::ops::RangeInclusive;

/// `OFPP_MAX`: numbers from here up are OpenFlow's reserved ports (IN_PORT, CONTROLLER, ...).
pub const RESERVED_FROM: u32 = 0xff00;

/// Numbers the agent gives pod ports.
pub const POD_PORTS: RangeInclusive<u32> = 32768..=RESERVED_FROM - 1;

/// A number a physical or virtual port can have (not 0, not a reserved port).
pub const fn is_port_number(n: u32) -> bool {
    n != 0 && n < RESERVED_FROM
}

/// The same check for OVSDB's signed `ofport` column (-1 while unassigned).
pub fn is_port_number_i64(n: i64) -> bool {
    u32::try_from(n).is_ok_and(is_port_number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(!is_port_number(0));
        assert!(is_port_number(1));
        assert!(is_port_number(0xfeff));
        assert!(!is_port_number(0xff00));
        assert!(!is_port_number_i64(-1));
        assert!(is_port_number_i64(7));
        assert!(POD_PORTS.clone().all(is_port_number));
        assert!(!POD_PORTS.contains(&32767));
    }
}
