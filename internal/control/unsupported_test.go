package control_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	datatypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	ctltypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
)

// TestPaymentOperationsUnsupported: the payment credential provider
// operations, which need AgentCore Payments, answer UnknownOperationException
// with the reason, through the official clients.
func TestPaymentOperationsUnsupported(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		ctl, data := s.Control(), s.Data()
		coinbase := &ctltypes.PaymentProviderConfigurationInputMemberCoinbaseCdpConfiguration{Value: ctltypes.CoinbaseCdpConfigurationInput{ApiKeyId: aws.String("k")}}
		calls := map[string]func() error{
			"CreatePaymentCredentialProvider": func() error {
				_, err := ctl.CreatePaymentCredentialProvider(ctx(t), &bedrockagentcorecontrol.CreatePaymentCredentialProviderInput{
					Name: aws.String("pay"), CredentialProviderVendor: ctltypes.PaymentCredentialProviderVendorTypeCoinbaseCDP, ProviderConfigurationInput: coinbase})
				return err
			},
			"GetPaymentCredentialProvider": func() error {
				_, err := ctl.GetPaymentCredentialProvider(ctx(t), &bedrockagentcorecontrol.GetPaymentCredentialProviderInput{Name: aws.String("pay")})
				return err
			},
			"UpdatePaymentCredentialProvider": func() error {
				_, err := ctl.UpdatePaymentCredentialProvider(ctx(t), &bedrockagentcorecontrol.UpdatePaymentCredentialProviderInput{
					Name: aws.String("pay"), CredentialProviderVendor: ctltypes.PaymentCredentialProviderVendorTypeCoinbaseCDP, ProviderConfigurationInput: coinbase})
				return err
			},
			"DeletePaymentCredentialProvider": func() error {
				_, err := ctl.DeletePaymentCredentialProvider(ctx(t), &bedrockagentcorecontrol.DeletePaymentCredentialProviderInput{Name: aws.String("pay")})
				return err
			},
			"ListPaymentCredentialProviders": func() error {
				_, err := ctl.ListPaymentCredentialProviders(ctx(t), &bedrockagentcorecontrol.ListPaymentCredentialProvidersInput{})
				return err
			},
			"GetResourcePaymentToken": func() error {
				_, err := data.GetResourcePaymentToken(ctx(t), &bedrockagentcore.GetResourcePaymentTokenInput{
					WorkloadIdentityToken: aws.String("wat"), ResourceCredentialProviderName: aws.String("pay"),
					PaymentTokenRequest: &datatypes.PaymentTokenRequestInputMemberCoinbaseCdpTokenRequest{Value: datatypes.CoinbaseCdpTokenRequestInput{
						RequestMethod: datatypes.PaymentHttpMethodTypePost, RequestPath: aws.String("/v2/x")}},
				})
				return err
			},
		}
		for name, call := range calls {
			err := call()
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "UnknownOperationException" || !strings.Contains(api.ErrorMessage(), "not supported by behalf") {
				t.Errorf("%s: %v, want UnknownOperationException giving the reason", name, err)
			}
		}
	})
}
