//go:build gemini_rotator_pkgconfig

package rotator

// With `-tags gemini_rotator_pkgconfig` the binding takes the header and the library from
// pkg-config, for a library installed under a prefix (`make install PREFIX=...` at the
// repository root), so a program outside the checkout needs nothing from target/. It links the
// shared library: set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig unless pkg-config searches that
// prefix already, and at run time LD_LIBRARY_PATH=<prefix>/lib unless the loader does (ldconfig).
// This tag wins over gemini_rotator_dynamic: exactly one link_*.go file applies.

// #cgo pkg-config: gemini_rotator
import "C"
