module gemini-rotator/bindings/go

go 1.23
