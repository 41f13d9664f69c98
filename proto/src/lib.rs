//! Protobuf and tonic code for every Weft gRPC API (agent, CNI, northbound, peering, placement).
