// fusion.cc: fuse_residual_adds (graph/fusion.h).
#include "graph/fusion.h"

namespace lowbit {
namespace {

// What the add node becomes: it keeps its name and op for nodes() and the profile, and runs nothing.
class FusedAwayNode : public Node {
 public:
  void run(const RunBuffers&) const override {}
};

}  // namespace

void fuse_residual_adds(Graph& g, std::vector<int64_t>& writer) {
  std::vector<size_t> readers(g.tensors.size(), 0);
  for (const auto& n : g.nodes)
    for (uint32_t t : n->inputs) ++readers[t];
  for (const GraphIo& io : g.outputs) ++readers[io.tensor];
  for (size_t j = 0; j < g.nodes.size(); ++j) {
    QAddNodeInfo info;
    if (!qadd_node_info(*g.nodes[j], &info)) continue;
    const Node& add = *g.nodes[j];
    for (int side = 0; side < 2; ++side) {
      const uint32_t self = add.inputs[side], residual = add.inputs[1 - side];
      const int64_t w = writer[self];
      // The conv must be the add's only source of `self`, and the residual written before it: the
      // fused node runs where the conv did. (A block's conv that runs before its shortcut conv
      // fuses through the other side.)
      if (w < 0 || readers[self] != 1 || writer[residual] >= w || g.nodes[w]->op != "qconv2d") continue;
      Node& conv = *g.nodes[w];
      if (!fuse_residual_add(conv, info, side)) continue;
      conv.inputs.push_back(residual);
      conv.outputs = add.outputs;
      writer[add.outputs[0]] = w;
      writer[self] = -1;
      auto placeholder = std::make_unique<FusedAwayNode>();
      placeholder->name = add.name, placeholder->op = add.op;
      g.nodes[j] = std::move(placeholder);
      break;
    }
  }
}

}  // namespace lowbit
