package wire

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type role string

type vend struct {
	Token    string            `json:"workloadIdentityToken"`
	Scopes   []string          `json:"scopes"`
	Force    *bool             `json:"forceAuthentication,omitempty"`
	Flag     bool              `json:"flag"`
	Params   map[string]string `json:"customParameters,omitempty"`
	Role     role              `json:"role"`
	State    *string           `json:"customState,omitempty"`
	Inner    *inner            `json:"inner,omitempty"`
	List     []inner           `json:"list,omitempty"`
	Matrix   [][]string        `json:"matrix,omitempty"`
	Count    int               `json:"count"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Bytes    []byte            `json:"bytes,omitempty"`
	Anything any               `json:"anything,omitempty"`
}

var decodeSeeds = []string{
	`{"workloadIdentityToken":"eyJ.abc.def","scopes":["a","b"],"forceAuthentication":true,"customParameters":{"k":"v","x":""}}`,
	`{"scopes":[],"flag":false,"role":"admin","customState":"s","inner":{"clientId":"c","params":{"a":"b"}}}`,
	`{"list":[{"clientId":"x"},{}],"matrix":[["a"],[],["b","c"]]}`,
	`{"workloadIdentityToken":"caf\u00e9","scopes":null}`,
	`{"workloadIdentityToken":"café ☕","count":3,"raw":{"a":[1]},"bytes":"AQI=","anything":[1,"x"]}`,
	`{"forceAuthentication":null,"inner":null,"customParameters":null}`,
	`{"scopes":"not a list"}`, `{"flag":"true"}`, `{"flag":tru}`, `{"workloadIdentityToken":1}`,
	"{\"workloadIdentityToken\":\"\xff\xfe\"}", `{"customParameters":{"k":1}}`, `{"inner":[]}`, `{"scopes":[1]}`,
}

// TestDecodeMatchesStandardLibrary: whatever Decode accepts, it decodes
// exactly as json.Unmarshal does, whether it stores the values itself or
// leaves them to json.Unmarshal.
func TestDecodeMatchesStandardLibrary(t *testing.T) {
	for _, body := range decodeSeeds {
		checkDecodeMatches(t, []byte(body))
	}
}

func FuzzDecodeMatchesStandardLibrary(f *testing.F) {
	for _, body := range decodeSeeds {
		f.Add([]byte(body))
	}
	f.Fuzz(checkDecodeMatches)
}

func checkDecodeMatches(t *testing.T, body []byte) {
	var got vend
	if Decode(body, &got) != nil {
		return
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	var want vend
	if err := json.Unmarshal(trimmed, &want); err != nil {
		t.Fatalf("Decode accepted what encoding/json refuses (%v): %q", err, body)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Decode(%q) differs from json.Unmarshal (-want +got):\n%s", body, d)
	}
}

// A pre-filled value is merged into as json.Unmarshal merges.
func TestDecodeMergesLikeStandardLibrary(t *testing.T) {
	body := []byte(`{"scopes":["x"],"customParameters":{"b":"2"},"inner":{"clientId":"new"}}`)
	fill := func() vend {
		return vend{Token: "kept", Scopes: []string{"old", "older"}, Params: map[string]string{"a": "1"}, Inner: &inner{ClientID: "old", Params: map[string]string{"p": "q"}}}
	}
	got, want := fill(), fill()
	if err := Decode(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func BenchmarkDecodeVend(b *testing.B) {
	body := []byte(`{"workloadIdentityToken":"` + string(bytes.Repeat([]byte("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"), 36)) + `","resourceCredentialProviderName":"bench-key"}`)
	type apiKeyInput struct {
		Token    string `json:"workloadIdentityToken"`
		Provider string `json:"resourceCredentialProviderName"`
	}
	for b.Loop() {
		var in apiKeyInput
		if err := Decode(body, &in); err != nil {
			b.Fatal(err)
		}
	}
}
