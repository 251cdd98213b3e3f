// Command behalf is a self-hosted identity and credential service for AI
// agents, wire-compatible with Amazon Bedrock AgentCore Identity.
package main

import (
	"context"
	"os"

	"github.com/behalf-dev/behalf/internal/cli"
)

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
