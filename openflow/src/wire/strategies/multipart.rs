//! Strategies for MULTIPART request and reply bodies.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{bucket, bytes, fixed_str, group_type, instructions, match_, port_desc};
use crate::wire::{
    AggregateStats, BucketCounter, Desc, FlowModFlags, FlowStats, FlowStatsRequest, GroupDesc,
    GroupStats, MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody,
    PortStats, TableStats,
};

/// Multipart types with a typed body; `Other` bodies use any other number.
const KNOWN_MULTIPART: [u16; 8] = [0, 1, 2, 3, 4, 6, 7, 13];

/// The FLOW and AGGREGATE request body.
pub fn flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        match_(),
    )
        .prop_map(
            |(table_id, out_port, out_group, cookie, cookie_mask, m)| FlowStatsRequest {
                table_id,
                out_port,
                out_group,
                cookie,
                cookie_mask,
                r#match: m,
            },
        )
}

/// Multipart flags: mostly none or MORE, sometimes anything.
fn multipart_flags() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(crate::wire::MULTIPART_MORE), any::<u16>()]
}

fn other_multipart_type() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("typed multipart kinds", |t| !KNOWN_MULTIPART.contains(t))
}

pub fn multipart_request_body() -> impl Strategy<Value = MultipartRequestBody> {
    use MultipartRequestBody as B;
    prop_oneof![
        Just(B::Desc),
        flow_stats_request().prop_map(B::Flow),
        flow_stats_request().prop_map(B::Aggregate),
        Just(B::Table),
        any::<u32>().prop_map(|port_no| B::PortStats { port_no }),
        any::<u32>().prop_map(|group_id| B::Group { group_id }),
        Just(B::GroupDesc),
        Just(B::PortDesc),
        (other_multipart_type(), bytes(24)).prop_map(|(typ, body)| B::Other { typ, body }),
    ]
}

pub fn multipart_request() -> impl Strategy<Value = MultipartRequest> {
    (multipart_flags(), multipart_request_body())
        .prop_map(|(flags, body)| MultipartRequest { flags, body })
}

pub fn desc() -> impl Strategy<Value = Desc> {
    (
        fixed_str(256),
        fixed_str(256),
        fixed_str(256),
        fixed_str(32),
        fixed_str(256),
    )
        .prop_map(|(mfr_desc, hw_desc, sw_desc, serial_num, dp_desc)| Desc {
            mfr_desc,
            hw_desc,
            sw_desc,
            serial_num,
            dp_desc,
        })
}

pub fn flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>()),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>().prop_map(FlowModFlags),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        match_(),
        instructions(),
    )
        .prop_map(
            |(
                (table_id, duration_sec, duration_nsec, priority),
                (idle_timeout, hard_timeout, flags),
                (cookie, packet_count, byte_count),
                m,
                instructions,
            )| FlowStats {
                table_id,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                flags,
                cookie,
                packet_count,
                byte_count,
                r#match: m,
                instructions,
            },
        )
}

pub fn aggregate_stats() -> impl Strategy<Value = AggregateStats> {
    (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(packet_count, byte_count, flow_count)| {
        AggregateStats {
            packet_count,
            byte_count,
            flow_count,
        }
    })
}

pub fn table_stats() -> impl Strategy<Value = TableStats> {
    (any::<u8>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
        |(table_id, active_count, lookup_count, matched_count)| TableStats {
            table_id,
            active_count,
            lookup_count,
            matched_count,
        },
    )
}

pub fn port_stats() -> impl Strategy<Value = PortStats> {
    (any::<u32>(), any::<[u64; 12]>(), any::<u32>(), any::<u32>()).prop_map(
        |(port_no, c, duration_sec, duration_nsec)| PortStats {
            port_no,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec,
            duration_nsec,
        },
    )
}

pub fn group_stats() -> impl Strategy<Value = GroupStats> {
    (
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()),
        (any::<u32>(), any::<u32>()),
        vec(
            (any::<u64>(), any::<u64>()).prop_map(|(packet_count, byte_count)| BucketCounter {
                packet_count,
                byte_count,
            }),
            0..4,
        ),
    )
        .prop_map(
            |(
                (group_id, ref_count, packet_count, byte_count),
                (duration_sec, duration_nsec),
                buckets,
            )| {
                GroupStats {
                    group_id,
                    ref_count,
                    packet_count,
                    byte_count,
                    duration_sec,
                    duration_nsec,
                    buckets,
                }
            },
        )
}

pub fn group_desc() -> impl Strategy<Value = GroupDesc> {
    (group_type(), any::<u32>(), vec(bucket(), 0..4)).prop_map(|(group_type, group_id, buckets)| {
        GroupDesc {
            group_type,
            group_id,
            buckets,
        }
    })
}

pub fn multipart_reply_body() -> impl Strategy<Value = MultipartReplyBody> {
    use MultipartReplyBody as B;
    prop_oneof![
        desc().prop_map(B::Desc),
        vec(flow_stats(), 0..4).prop_map(B::Flow),
        aggregate_stats().prop_map(B::Aggregate),
        vec(table_stats(), 0..4).prop_map(B::Table),
        vec(port_stats(), 0..4).prop_map(B::PortStats),
        vec(group_stats(), 0..4).prop_map(B::Group),
        vec(group_desc(), 0..4).prop_map(B::GroupDesc),
        vec(port_desc(), 0..4).prop_map(B::PortDesc),
        (other_multipart_type(), bytes(24)).prop_map(|(typ, body)| B::Other { typ, body }),
    ]
}

pub fn multipart_reply() -> impl Strategy<Value = MultipartReply> {
    (multipart_flags(), multipart_reply_body())
        .prop_map(|(flags, body)| MultipartReply { flags, body })
}
