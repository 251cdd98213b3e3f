package control_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcorecontrol/types"

	"github.com/behalf-dev/behalf/internal/testutil/behalftest"
	"github.com/behalf-dev/behalf/internal/testutil/testclock"
)

const (
	testRoleARN = "arn:aws:iam::123456789012:role/consent-portal"
	testGateway = "my-gateway-abcdefghij"
)

// portalIDShape is ConsentPortalIdType's pattern in the API reference.
var portalIDShape = regexp.MustCompile(`^[a-zA-Z0-9\-_]{1,50}-[A-Za-z0-9]{10}$`)

func portalInput(name, providerARN string) *bedrockagentcorecontrol.CreateConsentPortalInput {
	return &bedrockagentcorecontrol.CreateConsentPortalInput{
		Name: aws.String(name), ExecutionRoleArn: aws.String(testRoleARN),
		IdpConfig: &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(providerARN), Scopes: []string{"openid", "profile"}},
		Sources:   []types.ConsentPortalSource{{Identifier: aws.String(testGateway), Type: types.ConsentPortalSourceTypeAgentcoreGateway}},
	}
}

func TestConsentPortals(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		clock := testclock.Running()
		s := behalftest.Start(t, b, behalftest.Options{Now: clock.Now})
		c, cx := s.Control(), ctx(t)
		idp := discoveryServer(t, nil)
		var providerARNs []string
		for _, name := range []string{"corp-idp", "other-idp"} {
			p, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
				Name: aws.String(name), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
				Oauth2ProviderConfigInput: oauth2Input(mustVendor("CustomOauth2"), idp.URL),
			})
			if err != nil {
				t.Fatal(err)
			}
			providerARNs = append(providerARNs, aws.ToString(p.CredentialProviderArn))
		}

		in := portalInput("support", providerARNs[0])
		in.Description, in.Tags = aws.String("Support agents"), map[string]string{"team": "support"}
		created, err := c.CreateConsentPortal(cx, in)
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(created.ConsentPortalId)
		wantARN := "arn:aws:bedrock-agentcore:us-east-1:000000000000:consent-portal/" + id
		if !portalIDShape.MatchString(id) || !strings.HasPrefix(id, "support-") || aws.ToString(created.ConsentPortalArn) != wantARN ||
			created.Status != types.ConsentPortalStatusActive || aws.ToString(created.PortalUrl) != s.URL+"/portals/"+id+"/" ||
			aws.ToString(created.Name) != "support" || aws.ToString(created.Description) != "Support agents" ||
			aws.ToString(created.ExecutionRoleArn) != testRoleARN || created.StatusReason != nil ||
			aws.ToString(created.IdpConfig.CredentialProviderArn) != providerARNs[0] || !slices.Equal(created.IdpConfig.Scopes, []string{"openid", "profile"}) ||
			created.IdpConfig.Audience != nil || len(created.Sources) != 1 || aws.ToString(created.Sources[0].Identifier) != testGateway ||
			created.Sources[0].Type != types.ConsentPortalSourceTypeAgentcoreGateway ||
			clock.Now().Sub(aws.ToTime(created.CreatedAt)) > time.Second || !created.UpdatedAt.Equal(*created.CreatedAt) {
			t.Fatalf("create: %+v", created)
		}

		// By id and by ARN.
		for _, ident := range []string{id, wantARN} {
			got, err := c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String(ident)})
			if err != nil || aws.ToString(got.ConsentPortalId) != id || aws.ToString(got.ConsentPortalArn) != wantARN ||
				got.Status != types.ConsentPortalStatusActive || aws.ToString(got.Description) != "Support agents" {
				t.Fatalf("get %s: %+v %v", ident, got, err)
			}
		}
		tags, err := c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String(wantARN)})
		if err != nil || tags.Tags["team"] != "support" {
			t.Fatalf("tags: %+v %v", tags, err)
		}
		// The portal's pages come later: its URL is reserved, not served.
		if res, err := http.Get(aws.ToString(created.PortalUrl)); err != nil || res.StatusCode != http.StatusNotFound {
			t.Fatalf("portal URL answered %v %v", res, err)
		} else {
			res.Body.Close()
		}

		_, err = c.CreateConsentPortal(cx, portalInput("support", providerARNs[0]))
		wantAPIError[*types.ConflictException](t, err)

		clock.Advance(time.Second)
		up, err := c.UpdateConsentPortal(cx, &bedrockagentcorecontrol.UpdateConsentPortalInput{
			ConsentPortalIdentifier: aws.String(wantARN), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/other"),
			IdpConfig: &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(providerARNs[1]), Scopes: []string{"openid"}, Audience: aws.String("https://api.example.com")},
		})
		if err != nil || aws.ToString(up.ExecutionRoleArn) != "arn:aws:iam::123456789012:role/other" ||
			aws.ToString(up.IdpConfig.CredentialProviderArn) != providerARNs[1] || aws.ToString(up.IdpConfig.Audience) != "https://api.example.com" ||
			aws.ToString(up.Description) != "Support agents" || aws.ToString(up.Name) != "support" || aws.ToString(up.Sources[0].Identifier) != testGateway ||
			!up.UpdatedAt.After(*up.CreatedAt) || !up.CreatedAt.Equal(*created.CreatedAt) || up.Status != types.ConsentPortalStatusActive {
			t.Fatalf("update: %+v %v", up, err)
		}
		up, err = c.UpdateConsentPortal(cx, &bedrockagentcorecontrol.UpdateConsentPortalInput{ConsentPortalIdentifier: aws.String(id), Description: aws.String("")})
		if err != nil || up.Description != nil || aws.ToString(up.IdpConfig.Audience) != "https://api.example.com" {
			t.Fatalf("clear description: %+v %v", up, err)
		}

		for i := range 11 {
			if _, err := c.CreateConsentPortal(cx, portalInput(fmt.Sprintf("bulk-%02d", i), providerARNs[0])); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		pages := 0
		p := bedrockagentcorecontrol.NewListConsentPortalsPaginator(c, &bedrockagentcorecontrol.ListConsentPortalsInput{MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			page, err := p.NextPage(cx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, sum := range page.ConsentPortals {
				if sum.Status != types.ConsentPortalStatusActive || len(sum.Sources) != 1 || sum.CreatedAt == nil ||
					aws.ToString(sum.PortalUrl) != s.URL+"/portals/"+aws.ToString(sum.ConsentPortalId)+"/" {
					t.Fatalf("summary: %+v", sum)
				}
				ids = append(ids, aws.ToString(sum.ConsentPortalId))
			}
		}
		if len(ids) != 12 || pages != 3 || !slices.IsSorted(ids) || !slices.Contains(ids, id) {
			t.Fatalf("listed %d portals in %d pages: %v", len(ids), pages, ids)
		}
		_, err = c.ListConsentPortals(cx, &bedrockagentcorecontrol.ListConsentPortalsInput{MaxResults: aws.Int32(101)})
		wantAPIError[*types.ValidationException](t, err)
		_, err = c.ListConsentPortals(cx, &bedrockagentcorecontrol.ListConsentPortalsInput{NextToken: aws.String("forged")})
		wantAPIError[*types.ValidationException](t, err)

		if _, err := c.DeleteConsentPortal(cx, &bedrockagentcorecontrol.DeleteConsentPortalInput{ConsentPortalIdentifier: aws.String(wantARN)}); err != nil {
			t.Fatal(err)
		}
		for _, ident := range []string{id, wantARN} {
			_, err = c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String(ident)})
			wantAPIError[*types.ResourceNotFoundException](t, err)
		}
		_, err = c.DeleteConsentPortal(cx, &bedrockagentcorecontrol.DeleteConsentPortalInput{ConsentPortalIdentifier: aws.String(id)})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.UpdateConsentPortal(cx, &bedrockagentcorecontrol.UpdateConsentPortalInput{ConsentPortalIdentifier: aws.String(id), Description: aws.String("x")})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.ListTagsForResource(cx, &bedrockagentcorecontrol.ListTagsForResourceInput{ResourceArn: aws.String(wantARN)})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		// Every change is audited, naming the portal.
		want := map[string]int{"CreateConsentPortal": 12, "UpdateConsentPortal": 2, "DeleteConsentPortal": 1}
		got := map[string]int{}
		for _, r := range auditRecords(t, s.Server.Store()) {
			if r.Outcome == "success" && strings.HasPrefix(r.Resource, "arn:aws:bedrock-agentcore:us-east-1:000000000000:consent-portal/") &&
				(r.Operation == "CreateConsentPortal" || r.Resource == wantARN) {
				got[r.Operation]++
			}
		}
		for op, n := range want {
			if got[op] != n {
				t.Errorf("%d successful %s records, want %d (%v)", got[op], op, n, got)
			}
		}
	})
}

func TestConsentPortalBadInput(t *testing.T) {
	behalftest.ForEachBackend(t, func(t *testing.T, b behalftest.Backend) {
		s := behalftest.Start(t, b, behalftest.Options{})
		c, cx := s.Control(), ctx(t)
		idp := discoveryServer(t, nil)
		p, err := c.CreateOauth2CredentialProvider(cx, &bedrockagentcorecontrol.CreateOauth2CredentialProviderInput{
			Name: aws.String("corp-idp"), CredentialProviderVendor: types.CredentialProviderVendorTypeCustomOauth2,
			Oauth2ProviderConfigInput: oauth2Input(mustVendor("CustomOauth2"), idp.URL),
		})
		if err != nil {
			t.Fatal(err)
		}
		providerARN := aws.ToString(p.CredentialProviderArn)
		key, err := c.CreateApiKeyCredentialProvider(cx, &bedrockagentcorecontrol.CreateApiKeyCredentialProviderInput{Name: aws.String("key"), ApiKey: aws.String("sk-0123456789")})
		if err != nil {
			t.Fatal(err)
		}
		with := func(change func(in *bedrockagentcorecontrol.CreateConsentPortalInput)) *bedrockagentcorecontrol.CreateConsentPortalInput {
			in := portalInput("portal", providerARN)
			change(in)
			return in
		}
		source := func(typ types.ConsentPortalSourceType, ident string) types.ConsentPortalSource {
			return types.ConsentPortalSource{Type: typ, Identifier: aws.String(ident)}
		}
		gw := types.ConsentPortalSourceTypeAgentcoreGateway

		invalid := map[string]*bedrockagentcorecontrol.CreateConsentPortalInput{
			"no name":  with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Name = aws.String("") }),
			"bad name": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Name = aws.String("my portal") }),
			"long name": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.Name = aws.String(strings.Repeat("n", 51))
			}),
			"long description": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.Description = aws.String(strings.Repeat("d", 513))
			}),
			"no role": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.ExecutionRoleArn = aws.String("") }),
			"bad role": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.ExecutionRoleArn = aws.String("arn:aws:iam::123:user/x")
			}),
			"no provider": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.CredentialProviderArn = aws.String("")
			}),
			"API key provider": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.CredentialProviderArn = key.CredentialProviderArn
			}),
			"not an ARN": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.CredentialProviderArn = aws.String("corp-idp")
			}),
			"no scopes":   with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.IdpConfig.Scopes = []string{} }),
			"empty scope": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.IdpConfig.Scopes = []string{""} }),
			"scope with a space": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.Scopes = []string{"openid profile"}
			}),
			"scope with a quote": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.IdpConfig.Scopes = []string{`a"b`} }),
			"long scope": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.Scopes = []string{strings.Repeat("s", 256)}
			}),
			"too many scopes": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.IdpConfig.Scopes = slices.Repeat([]string{"s"}, 101)
			}),
			"no sources": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Sources = []types.ConsentPortalSource{} }),
			"two sources": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.Sources = append(in.Sources, in.Sources[0])
			}),
			"bad type":       with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Sources[0].Type = "agentcore-runtime" }),
			"no identifier":  with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Sources[0] = source(gw, "") }),
			"bad identifier": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Sources[0] = source(gw, "My_Gateway") }),
			"foreign gateway ARN": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
				in.Sources[0] = source(gw, "arn:aws:bedrock-agentcore:eu-west-1:111111111111:gateway/gw-abcdefghij")
			}),
			"reserved tag": with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) { in.Tags = map[string]string{"aws:x": "y"} }),
		}
		for name, in := range invalid {
			_, err := c.CreateConsentPortal(cx, in)
			ve := wantAPIError[*types.ValidationException](t, err)
			if len(ve.FieldList) == 0 {
				t.Errorf("%s: no field list in %+v", name, ve)
			}
		}

		// Members the SDK itself insists on, missing from a raw request.
		const role, sources = `"executionRoleArn":"` + testRoleARN + `"`, `"sources":[{"identifier":"` + testGateway + `","type":"agentcore-gateway"}]`
		idpConfig := `"idpConfig":{"credentialProviderArn":"` + providerARN + `","scopes":["openid"]}`
		missing := map[string]string{
			"name":                  `{` + role + `,` + idpConfig + `,` + sources + `}`,
			"executionRoleArn":      `{"name":"p",` + idpConfig + `,` + sources + `}`,
			"idpConfig":             `{"name":"p",` + role + `,` + sources + `}`,
			"idpConfig.scopes":      `{"name":"p",` + role + `,"idpConfig":{"credentialProviderArn":"` + providerARN + `"},` + sources + `}`,
			"sources":               `{"name":"p",` + role + `,` + idpConfig + `}`,
			"sources[0].type":       `{"name":"p",` + role + `,` + idpConfig + `,"sources":[{"identifier":"` + testGateway + `"}]}`,
			"sources[0].identifier": `{"name":"p",` + role + `,` + idpConfig + `,"sources":[{"type":"agentcore-gateway"}]}`,
		}
		for member, body := range missing {
			res := s.Do(t, behalftest.Raw{Path: "/identities/CreateConsentPortal", Body: []byte(body)})
			if res.Status != http.StatusBadRequest || res.ErrType != "ValidationException" || !strings.Contains(string(res.Body), member) {
				t.Errorf("without %s: %d %s %s", member, res.Status, res.ErrType, res.Body)
			}
		}
		for _, op := range []string{"GetConsentPortal", "UpdateConsentPortal", "DeleteConsentPortal"} {
			if res := s.Do(t, behalftest.Raw{Path: "/identities/" + op, Body: []byte(`{}`)}); res.Status != http.StatusBadRequest || res.ErrType != "ValidationException" {
				t.Errorf("%s without an identifier: %d %s", op, res.Status, res.Body)
			}
		}

		// A provider that is well named but absent, or of another
		// account, is not found.
		for _, arn := range []string{
			"arn:aws:bedrock-agentcore:us-east-1:000000000000:token-vault/default/oauth2credentialprovider/ghost",
			"arn:aws:bedrock-agentcore:eu-west-1:111111111111:token-vault/default/oauth2credentialprovider/corp-idp",
			"arn:aws:bedrock-agentcore:us-east-1:000000000000:token-vault/other/oauth2credentialprovider/corp-idp",
		} {
			_, err := c.CreateConsentPortal(cx, portalInput("portal", arn))
			wantAPIError[*types.ResourceNotFoundException](t, err)
		}

		// A gateway ARN of this server's region and account is a source.
		arnSource := with(func(in *bedrockagentcorecontrol.CreateConsentPortalInput) {
			in.Sources[0] = source(gw, "arn:aws:bedrock-agentcore:us-east-1:000000000000:gateway/gw-abcdefghij")
		})
		created, err := c.CreateConsentPortal(cx, arnSource)
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(created.ConsentPortalId)

		for name, ident := range map[string]string{
			"empty":          "",
			"no suffix":      "portal",
			"short suffix":   "portal-abc",
			"other resource": "arn:aws:bedrock-agentcore:us-east-1:000000000000:workload-identity-directory/default/workload-identity/x",
		} {
			_, err := c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String(ident)})
			if ve := wantAPIError[*types.ValidationException](t, err); len(ve.FieldList) == 0 {
				t.Errorf("%s: no field list in %+v", name, ve)
			}
		}
		_, err = c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{
			ConsentPortalIdentifier: aws.String("arn:aws:bedrock-agentcore:eu-west-1:111111111111:consent-portal/" + id)})
		wantAPIError[*types.ResourceNotFoundException](t, err)
		_, err = c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String("ghost-abcdefghij")})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		for name, in := range map[string]*bedrockagentcorecontrol.UpdateConsentPortalInput{
			"bad role":    {ConsentPortalIdentifier: aws.String(id), ExecutionRoleArn: aws.String("role")},
			"no scopes":   {ConsentPortalIdentifier: aws.String(id), IdpConfig: &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(providerARN), Scopes: []string{}}},
			"no provider": {ConsentPortalIdentifier: aws.String(id), IdpConfig: &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String(""), Scopes: []string{"openid"}}},
		} {
			_, err := c.UpdateConsentPortal(cx, in)
			if ve := wantAPIError[*types.ValidationException](t, err); len(ve.FieldList) == 0 {
				t.Errorf("%s: no field list in %+v", name, ve)
			}
		}
		_, err = c.UpdateConsentPortal(cx, &bedrockagentcorecontrol.UpdateConsentPortalInput{ConsentPortalIdentifier: aws.String(id),
			IdpConfig: &types.ConsentPortalIdpConfig{CredentialProviderArn: aws.String("arn:aws:bedrock-agentcore:us-east-1:000000000000:token-vault/default/oauth2credentialprovider/ghost"), Scopes: []string{"openid"}}})
		wantAPIError[*types.ResourceNotFoundException](t, err)

		// Refused changes leave the portal as it was, and failure records.
		got, err := c.GetConsentPortal(cx, &bedrockagentcorecontrol.GetConsentPortalInput{ConsentPortalIdentifier: aws.String(id)})
		if err != nil || !got.UpdatedAt.Equal(*created.UpdatedAt) || aws.ToString(got.IdpConfig.CredentialProviderArn) != providerARN {
			t.Fatalf("after refused updates: %+v %v", got, err)
		}
		failures := 0
		for _, r := range auditRecords(t, s.Server.Store()) {
			if r.Operation == "CreateConsentPortal" && r.Outcome == "failure" {
				failures++
			}
		}
		if want := len(invalid) + len(missing) + 3; failures != want {
			t.Errorf("%d failed CreateConsentPortal records, want %d", failures, want)
		}
	})
}
