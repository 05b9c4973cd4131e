package rotator_test

import (
	"context"
	"fmt"
	"log"

	rotator "gemini-rotator/bindings/go"
)

// Conn is an application's own connection object, holding the process's key pool among its
// other resources.
type Conn struct {
	pool *rotator.KeyPool
	// ... database handles, caches, ...
}

// KeyPool makes *Conn a rotator.PoolProvider.
func (c *Conn) KeyPool() *rotator.KeyPool { return c.pool }

// Existing code that built its client from a connection object keeps doing so.
func ExamplePoolProvider() {
	pool, err := rotator.NewKeyPoolFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	conn := &Conn{pool: pool}
	defer conn.pool.Close()

	geminiClient := rotator.NewGeminiClient(conn)
	response, err := geminiClient.SimpleTextQuery(context.Background(), "Your prompt here")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(response)
	// Output: echo: Your prompt here
}
