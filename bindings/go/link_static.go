//go:build !gemini_rotator_dynamic && !gemini_rotator_pkgconfig

package rotator

// By default the binding links the static library, so that a program importing it is one
// self-contained binary. Build the library first: `cargo build --release --workspace` in the
// repository root.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libgemini_rotator.a -lm -ldl -lpthread
import "C"
