package sdk

import (
	"context"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// PropagateWorkloadToken is an option for bedrockagentcore.NewFromConfig
// (or a single call) that sends the context's workload access token in
// X-Amz-Bedrock-AgentCore-Identity-WAT with every operation whose name
// starts with Invoke (InvokeAgentRuntime, for an agent calling another
// agent for the same user). The header is added before the request is
// signed, so SigV4 covers it. The data plane's identity operations
// (GetResourceOauth2Token, …) never get it: they take the token in their
// input.
func PropagateWorkloadToken(o *bedrockagentcore.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("PropagateWorkloadToken", propagateWorkloadToken), middleware.After)
	})
}

func propagateWorkloadToken(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok && strings.HasPrefix(awsmiddleware.GetOperationName(ctx), "Invoke") {
		if wat := WorkloadToken(ctx); wat != "" {
			req.Header.Set(HeaderWorkloadToken, wat)
		}
	}
	return next.HandleBuild(ctx, in)
}
