module gemini-rotator/tests/cross/goworker

go 1.23

require gemini-rotator/bindings/go v0.0.0

replace gemini-rotator/bindings/go => ../../../bindings/go
