// TFLM behind the edgeforge firmware's model.h glue (benchmarks/peers/tflm.py writes model.h
// and peer_ops.h): the firmware's own protocol loop, counter and stack paint drive it, so
// the peer is measured exactly as our generated C is. No static constructors (startup.c
// does not run them): the interpreter is placement-new'ed on first use.
#include <stddef.h>
#include <stdint.h>

#include <new>

#include "peer_ops.h"
#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

extern "C" {
extern const unsigned char ef_peer_model[];
void ef_fw_op_begin(int op);
void ef_fw_op_end(int op);
}

namespace {

// TFLM's per-op profiler events become the firmware's EF_OP_BEGIN/END counter hooks.
class OpHooks : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char *) override {
    ef_fw_op_begin(static_cast<int>(next_));
    return next_++;
  }
  void EndEvent(uint32_t handle) override { ef_fw_op_end(static_cast<int>(handle)); }
  void Restart() { next_ = 0; }

 private:
  uint32_t next_ = 0;
};

using Resolver = tflite::MicroMutableOpResolver<EF_PEER_NUM_OP_KINDS>;
alignas(16) uint8_t arena[EF_PEER_ARENA_MAX];
alignas(Resolver) uint8_t resolver_mem[sizeof(Resolver)];
alignas(OpHooks) uint8_t hooks_mem[sizeof(OpHooks)];
alignas(tflite::MicroInterpreter) uint8_t interp_mem[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *interp;
OpHooks *hooks;
int state;  // 0 not yet, 1 ready, -1 failed

bool ready() {
  if (state == 0) {
    Resolver *r = new (resolver_mem) Resolver();
    EF_PEER_ADD_OPS(r);
    hooks = new (hooks_mem) OpHooks();
    interp = new (interp_mem) tflite::MicroInterpreter(
        tflite::GetModel(ef_peer_model), *r, arena, sizeof(arena), nullptr, hooks);
    state = interp->AllocateTensors() == kTfLiteOk ? 1 : -1;
  }
  return state == 1;
}

}  // namespace

extern "C" int ef_peer_invoke(void) {
  if (!ready()) return 1;
  hooks->Restart();
  return interp->Invoke() == kTfLiteOk ? 0 : 2;
}

extern "C" int8_t *ef_peer_input(int i) {
  static int8_t none[1];
  return ready() ? interp->input(i)->data.int8 : none;
}

extern "C" int8_t *ef_peer_output(int i) {
  static int8_t none[1];
  return ready() ? interp->output(i)->data.int8 : none;
}

extern "C" uint32_t ef_peer_arena_used(void) {
  return ready() ? static_cast<uint32_t>(interp->arena_used_bytes()) : 0u;
}

// the C++ runtime bits a bare-metal image without exceptions still references
extern "C" void __cxa_pure_virtual() {
  for (;;) {
  }
}
void operator delete(void *) noexcept {}
void operator delete(void *, size_t) noexcept {}

// TFLM's logging sink: silent (the serial line belongs to the protocol)
void DebugLog(const char *, va_list) {}
int DebugVsnprintf(char *buffer, size_t buf_size, const char *, va_list) {
  if (buf_size > 0) buffer[0] = '\0';
  return 0;
}
