"""Times os-ken's OpenFlow 1.3 codec on the FLOW_MOD of openflow/benches/common/mod.rs.

Prints one JSON line per figure, like the `codec_rate` bench, for scripts/bench-openflow.sh:
- flow_mod_bytes: the serialised message (xid 1) as hex, to compare with ours byte for byte;
- flow_mod_encode: serialising an already built OFPFlowMod (the counterpart of our encode);
- flow_mod_build_encode: building the match, instructions and OFPFlowMod, then serialising.
Rates are the best of five `timeit` rounds of a bounded count.
"""

import json
import sys
import timeit

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

ROUNDS = 5


class Datapath:
    """The two attributes OFPFlowMod.serialize() reads; no connection is needed."""

    ofproto = ofp
    ofproto_parser = parser
    id = 1


DP = Datapath()


def build():
    match = parser.OFPMatch(
        in_port=3,
        eth_src="02:00:00:00:00:0a",
        metadata=(0x0000_0001_0000_0000, 0xFFFF_FFFF_0000_0000),
    )
    instructions = [
        parser.OFPInstructionWriteMetadata(0x2A, 0xFFFF),
        parser.OFPInstructionGotoTable(1),
    ]
    return parser.OFPFlowMod(
        DP,
        cookie=0x1234,
        cookie_mask=0,
        table_id=0,
        command=ofp.OFPFC_ADD,
        idle_timeout=0,
        hard_timeout=0,
        priority=100,
        buffer_id=ofp.OFP_NO_BUFFER,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        flags=0,
        match=match,
        instructions=instructions,
    )


def serialized(msg, xid):
    msg.xid = None  # set_xid() refuses to overwrite an xid
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def rate(stmt, number):
    best = min(timeit.repeat(stmt, number=number, repeat=ROUNDS))
    return number / best


def main():
    number = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    msg = build()
    first = serialized(msg, 1)
    # Serialising twice must give the same bytes, or the timed loop would measure something else.
    assert serialized(msg, 1) == first, "os-ken serialise is not repeatable"
    print(json.dumps({"figure": "flow_mod_bytes", "impl": "os-ken", "xid": 1, "hex": first.hex()}))

    def encode():
        msg.xid = None
        msg.set_xid(2)
        msg.serialize()

    def build_encode():
        m = build()
        m.set_xid(2)
        m.serialize()

    for figure, stmt in (("flow_mod_encode", encode), ("flow_mod_build_encode", build_encode)):
        print(json.dumps({"figure": figure, "impl": "os-ken", "per_sec": round(rate(stmt, number))}))


if __name__ == "__main__":
    main()
