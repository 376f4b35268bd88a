// The shipped models (models/*.lowbit) give identical outputs on every ISA this CPU runs, and those
// with float layers (fconv2d / fdense: FMA and another summation order per ISA) outputs within float
// rounding: under qemu that compares the NEON (and dot-product) kernels with scalar on whole trained
// networks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "harness.h"
#include "lowbit/model.h"
#include "lowbit/runtime.h"

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(shipped_models_identical_on_every_isa) {
  const char* names[] = {"binary", "binary-mst", "w8a8", "w4a8", "mixed"};
  const auto isas = lowbit::supported_isas();
  for (const char* name : names) {
    const std::string path = std::string(LOWBIT_MODELS_DIR) + "/fashion-" + name + ".lowbit";
    const auto bytes = read_file(path);
    CHECK(!bytes.empty(), "cannot read " << path);
    const auto model = lowbit::load_model(bytes.data(), bytes.size());
    // Deterministic images in [0, 1]: a fixed pattern with noise, 7 samples.
    const size_t batch = 7, in = model->inputs()[0].elements, out = model->outputs()[0].elements;
    auto r = lowbit::test::rng(std::hash<std::string>{}(name));
    std::vector<float> x(batch * in);
    for (float& v : x) v = static_cast<float>(r() % 256) / 255.0f;
    std::vector<std::vector<float>> results;
    for (lowbit::Isa isa : isas) {
      lowbit::set_isa(lowbit::isa_name(isa));
      std::vector<float> y(batch * out);
      const float* inputs[] = {x.data()};
      float* outputs[] = {y.data()};
      model->run(batch, inputs, outputs);
      results.push_back(std::move(y));
    }
    lowbit::set_isa(lowbit::isa_name(isas.back()));
    const auto nodes = model->nodes();
    const bool has_float_layers = std::any_of(nodes.begin(), nodes.end(), [](const lowbit::ModelNodeInfo& n) {
      return n.op == "fconv2d" || n.op == "fdense";
    });
    float largest = 0;
    for (float v : results[0]) largest = std::max(largest, std::fabs(v));
    for (size_t i = 1; i < results.size(); ++i) {
      float worst = 0;
      for (size_t k = 0; k < results[0].size(); ++k) worst = std::max(worst, std::fabs(results[i][k] - results[0][k]));
      if (has_float_layers)
        CHECK(worst <= 1e-5f * largest, name << ": " << lowbit::isa_name(isas[i]) << " differs from "
                                             << lowbit::isa_name(isas[0]) << " by " << worst << " of " << largest);
      else
        CHECK(std::memcmp(results[i].data(), results[0].data(), results[0].size() * sizeof(float)) == 0,
              name << ": " << lowbit::isa_name(isas[i]) << " differs from " << lowbit::isa_name(isas[0]));
    }
  }
}
