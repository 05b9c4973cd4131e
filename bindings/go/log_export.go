package rotator

// The Go function the library's log callback reaches. It is alone in this file because a file
// with an //export directive may only declare, not define, C functions in its preamble.

// #include <stdint.h>
import "C"

// goRotatorLog receives one event from rotator_log_shim (log.go). It runs on the thread that
// caused the event; event_json is borrowed for the duration of the call, so it is copied.
//
//export goRotatorLog
func goRotatorLog(level C.int32_t, eventJSON *C.char, thread C.uintptr_t) {
	deliverLogEvent(int32(level), C.GoString(eventJSON), uintptr(thread))
}
