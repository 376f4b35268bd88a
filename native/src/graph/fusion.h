// fusion.h: the load-time fusion of a qconv2d with the qadd that is its output's only reader (the
// residual add at the end of a ResNet / MobileNetV2 block): the add runs in the conv's requantizer
// (integer/qconv_add.h), bit for bit the two operators, and the 8-bit tensor between them is never
// written. Nothing in the file changes: old files fuse too, and the add node stays in the node list
// (running nothing), so per-node profiles still line up with the file's nodes.
#pragma once
#include <cstdint>
#include <vector>

#include "graph/graph.h"
#include "lowbit/qops.h"

namespace lowbit {

// An 8-bit add node's operands and output (ops_small.cc); false for any other node.
struct QAddNodeInfo {
  bool a_signed = false, b_signed = false;
  QuantParams a, b;
  QuantOutput out;
};
bool qadd_node_info(const Node& node, QAddNodeInfo* info);

// Makes `conv` (a qconv2d node with an 8-bit output) compute add(its output, residual) instead,
// its output being input `self_side` (0: a, 1: b) of the add; false, and nothing changed, where it
// cannot (not such a node, or an add whose rescales need qadd's 64-bit path). ops_conv.cc.
bool fuse_residual_add(Node& conv, const QAddNodeInfo& add, int self_side);

// The pass over a loaded graph (model.cc, after the nodes are built); writer[t] is the node writing
// tensor t (-1: none) and is updated. LoadOptions::fuse_residual_adds = false skips it (tests
// compare against the unfused graph with it).
void fuse_residual_adds(Graph& g, std::vector<int64_t>& writer);

}  // namespace lowbit
