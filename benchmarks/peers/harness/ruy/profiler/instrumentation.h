// TFLM's reference kernels include ruy's profiler only for ScopeLabel, which is a no-op when
// ruy's profiler is off (TFLM downloads ruy for this one header). This stand-in is that no-op,
// so the peer build needs no ruy checkout.
#ifndef EF_PEER_RUY_INSTRUMENTATION_H_
#define EF_PEER_RUY_INSTRUMENTATION_H_
namespace ruy {
namespace profiler {
class ScopeLabel {
 public:
  template <typename... Args>
  explicit ScopeLabel(Args &&...) {}
};
}  // namespace profiler
}  // namespace ruy
#endif
