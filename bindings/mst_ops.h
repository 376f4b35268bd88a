// mst_ops.h: registers the MST schedule entry points (buildMst, serializeMst, loadMst,
// mstPositions, mstCost) on the addon's exports, and reads the schedule argument of bconv2d / bdense.
#pragma once
#include <napi.h>

#include <memory>

#include "lowbit/binary.h"
#include "lowbit/mst.h"

namespace lowbit::js {

void init_mst_ops(Napi::Env env, Napi::Object exports);

// A schedule with the weights it was built from (its difference sets come from them) and its
// compiled plan (null where the layer is too large for the MST path: it then runs dense).
struct BoundMst {
  std::shared_ptr<MstSchedule> schedule;
  std::shared_ptr<BinaryConv2dWeights> weights;
  std::shared_ptr<const MstPlan> plan;
};

// The schedule of a bconv2d / bdense call from its call options ({mst?, mstPolicy?}), see mst_ops.cc.
std::shared_ptr<BoundMst> call_schedule(Napi::Env env, Napi::Object call,
                                        const std::shared_ptr<BinaryConv2dWeights>& weights, MstPolicy& policy);

}  // namespace lowbit::js
