//go:build cgo

package wasmprocessor

import (
	"encoding/json"
	"testing"
)

// The generated table (rustfactories_gen.go, go/rustexporters, go/rustprocessors) is the
// runtime's factory list: regenerate with scripts/generate-go.sh.
func TestTheRustFactoryTableIsTheLinkedRuntimes(t *testing.T) {
	raw, err := factoriesJSONEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	var linked []struct {
		Kind             string `json:"kind"`
		Type             string `json:"type"`
		URN              string `json:"urn"`
		EmptyConfigValid bool   `json:"empty_config_valid"`
		Routes           bool   `json:"routes"`
		Plumbing         bool   `json:"plumbing"`
	}
	if err := json.Unmarshal(raw, &linked); err != nil {
		t.Fatal(err)
	}
	if len(linked) != len(rustFactories) {
		t.Fatalf("the runtime has %d factories, the table %d: regenerate with scripts/generate-go.sh", len(linked), len(rustFactories))
	}
	for i, f := range linked {
		want := rustFactory{kind: f.Kind, componentType: CollectorType(f.Type), urn: f.URN, emptyConfigValid: f.EmptyConfigValid, routes: f.Routes, plumbing: f.Plumbing}
		if rustFactories[i] != want {
			t.Errorf("factory %d: table %+v, runtime %+v: regenerate with scripts/generate-go.sh", i, rustFactories[i], want)
		}
	}
}
