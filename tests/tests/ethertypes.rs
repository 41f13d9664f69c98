//! Full Ethernet on every network: frames of any EtherType from a pod's own MAC cross nodes to
//! the members of its network and nobody else; a foreign source MAC is dropped in `Strict` and
//! carried in `Off`; an 802.1Q-tagged frame stays in its network whatever its tag.

use std::time::Duration;

use weft_tests::Lab;
use weft_tests::raw::{RawSocket, frame, mac};

/// PTP, eCPRI, PPPoE discovery and session, MPLS, LLDP, and one nobody registered.
const TYPES: [u16; 7] = [0x88f7, 0xaefe, 0x8863, 0x8864, 0x8847, 0x88cc, 0x9999];
const FOREIGN: [u8; 6] = [0x02, 0xee, 0xee, 0, 0, 1];

fn mac_of(pod: &serde_json::Value) -> [u8; 6] {
    mac(pod["attachments"][0]["mac"]
        .as_str()
        .expect("attachment MAC"))
}

/// Frames carrying `marker` among those a socket saw, as (EtherType, source MAC).
fn marked(frames: &[Vec<u8>], marker: &[u8]) -> Vec<(u16, [u8; 6])> {
    frames
        .iter()
        .filter(|f| f.len() >= 14 + marker.len() && f[14..].starts_with(marker))
        .map(|f| {
            let src: [u8; 6] = f[6..12].try_into().expect("6 bytes");
            (u16::from_be_bytes([f[12], f[13]]), src)
        })
        .collect()
}

#[test]
fn every_ethertype_crosses_nodes_within_its_network_only() {
    let Some(lab) = Lab::up("ethertypes", 2) else {
        return;
    };
    lab.net("cell", Some("10.60.0.0/24"));
    lab.json(&[
        "net",
        "create",
        "fw",
        "--subnet",
        "10.61.0.0/24",
        "--port-security",
        "off",
    ]);
    let other = lab.net("other", Some("10.62.0.0/24"));
    let other_segment = other["segment"].as_u64().expect("segment") as u16;
    let s1 = lab.pod("s1", "node1", "cell", None);
    let s2 = lab.pod("s2", "node2", "cell", None);
    let f1 = lab.pod("f1", "node1", "fw", None);
    let f2 = lab.pod("f2", "node2", "fw", None);
    lab.pod("x1", "node1", "other", None);
    lab.pod("x2", "node2", "other", None);
    // Positive control: plain IP still works in both modes.
    assert!(lab.ping("s1", &Lab::ip_of(&s2, 0), 2), "IPv4 within cell");
    assert!(lab.ping("f1", &Lab::ip_of(&f2, 0), 2), "IPv4 within fw");

    let open = |p: &str| RawSocket::open(&lab, p, "net1");
    let (tx_s, tx_f) = (open("s1"), open("f1"));
    let (rx_s, rx_f, rx_x1, rx_x2) = (open("s2"), open("f2"), open("x1"), open("x2"));
    let (m_s1, m_s2, m_f1, m_f2) = (mac_of(&s1), mac_of(&s2), mac_of(&f1), mac_of(&f2));

    // Strict: every EtherType from s1's own MAC, unicast to s2 and broadcast; one with a
    // foreign source MAC, which must not arrive anywhere.
    let marker = b"weft-ethertype-strict";
    for ty in TYPES {
        tx_s.send(&frame(m_s2, m_s1, ty, marker));
        tx_s.send(&frame([0xff; 6], m_s1, ty, marker));
    }
    tx_s.send(&frame([0xff; 6], FOREIGN, 0x88b5, marker));
    tx_s.send(&frame(m_s2, FOREIGN, 0x88b5, marker));

    // Off: a foreign source MAC, unicast to f2 and broadcast, in every EtherType too.
    let marker_f = b"weft-ethertype-off";
    for ty in TYPES {
        tx_f.send(&frame(m_f2, FOREIGN, ty, marker_f));
    }
    tx_f.send(&frame([0xff; 6], FOREIGN, 0x88b5, marker_f));
    tx_f.send(&frame(m_f2, m_f1, 0x88f7, marker_f));

    // 802.1Q-tagged, with the other network's segment as the tag: still cell's frame.
    let marker_t = b"weft-ethertype-tagged";
    let mut tagged = other_segment.to_be_bytes().to_vec();
    tagged.extend_from_slice(&0x88b5u16.to_be_bytes());
    tagged.extend_from_slice(marker_t);
    tx_s.send(&frame(m_s2, m_s1, 0x8100, &tagged));
    tx_s.send(&frame([0xff; 6], m_s1, 0x8100, &tagged));

    let wait = Duration::from_millis(1500);
    let got_s = rx_s.frames(wait);
    let got_f = rx_f.frames(Duration::from_millis(200));
    let got_x: Vec<Vec<u8>> = rx_x1
        .frames(Duration::from_millis(200))
        .into_iter()
        .chain(rx_x2.frames(Duration::from_millis(200)))
        .collect();

    let at_s2 = marked(&got_s, marker);
    for ty in TYPES {
        let n = at_s2.iter().filter(|f| **f == (ty, m_s1)).count();
        assert_eq!(
            n, 2,
            "EtherType {ty:#06x} from s1 reached s2 {n} times, want 2 (unicast + broadcast)"
        );
    }
    assert!(
        !at_s2.iter().any(|(_, src)| *src == FOREIGN),
        "Strict let a foreign source MAC through"
    );
    assert_eq!(at_s2.len(), 2 * TYPES.len(), "{at_s2:x?}");

    let at_f2 = marked(&got_f, marker_f);
    for ty in TYPES {
        assert!(
            at_f2.contains(&(ty, FOREIGN)),
            "Off dropped EtherType {ty:#06x} with a foreign source MAC"
        );
    }
    assert!(
        at_f2.contains(&(0x88b5, FOREIGN)),
        "Off dropped a foreign broadcast"
    );
    assert!(
        at_f2.contains(&(0x88f7, m_f1)),
        "Off dropped the pod's own MAC"
    );

    // The kernel may hand the tag over beside the frame: look for the marker anywhere.
    let seen = |frames: &[Vec<u8>], m: &[u8]| {
        frames
            .iter()
            .filter(|f| f.windows(m.len()).any(|w| w == m))
            .count()
    };
    assert_eq!(seen(&got_s, marker_t), 2, "tagged frames within cell");
    assert_eq!(seen(&got_x, marker_t), 0, "a tagged frame reached other");
    assert_eq!(seen(&got_f, marker_t), 0, "a tagged frame reached fw");

    // Nothing crossed networks: not to fw from cell, not to cell from fw, not to other.
    assert!(marked(&got_f, marker).is_empty(), "cell frames reached fw");
    assert!(
        marked(&got_s, marker_f).is_empty(),
        "fw frames reached cell"
    );
    assert!(
        marked(&got_x, marker).is_empty(),
        "cell frames reached other"
    );
    assert!(
        marked(&got_x, marker_f).is_empty(),
        "fw frames reached other"
    );
}
