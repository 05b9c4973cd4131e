//go:build gemini_rotator_dynamic && !gemini_rotator_pkgconfig

package rotator

// With `-tags gemini_rotator_dynamic` the binding links the shared library instead. The
// run-time search path points at the repository's target/release; set LD_LIBRARY_PATH (or
// install libgemini_rotator.so system-wide) to run the binary elsewhere.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -lgemini_rotator
import "C"
