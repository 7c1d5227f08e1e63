package main

// The hostile OTLP cases of tests/data/hostile-otlp.json, which the Rust
// tests of `wasmtel serve` send too; the file says how requests are built.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type hostileOTLP struct {
	Secret string        `json:"secret"`
	Cases  []hostileCase `json:"cases"`
}

type hostileCase struct {
	Name          string            `json:"name"`
	Spans         []hostileSpanSpec `json:"spans"`
	RequestHex    string            `json:"request_hex"`
	RequestRepeat int               `json:"request_repeat"`
	Times         int               `json:"times"`
	Expect        struct {
		Outcome string `json:"outcome"` // exported | refused | fail_closed
		Name    string `json:"name"`
		Count   int    `json:"count"`
		Cause   string `json:"cause"`
	} `json:"expect"`
}

type hostileSpanSpec struct {
	Name             *string `json:"name"`
	NameHex          string  `json:"name_hex"`
	Bare             bool    `json:"bare"`
	RawHex           string  `json:"raw_hex"`
	RawRepeat        int     `json:"raw_repeat"`
	NestedValueDepth int     `json:"nested_value_depth"`
	Repeat           int     `json:"repeat"`
}

// loadHostileOTLP reads the shared cases.
func loadHostileOTLP(t *testing.T) hostileOTLP {
	t.Helper()
	path := filepath.Join(repoRoot(t), "tests", "data", "hostile-otlp.json")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases hostileOTLP
	if err := json.Unmarshal(text, &cases); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cases.Cases) == 0 || cases.Secret == "" {
		t.Fatalf("%s: no cases", path)
	}
	return cases
}

// hostileCaseNamed is one case of the shared file.
func (h hostileOTLP) caseNamed(t *testing.T, name string) hostileCase {
	t.Helper()
	for _, c := range h.Cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("tests/data/hostile-otlp.json has no case %q", name)
	return hostileCase{}
}

func orOne(n int) int {
	if n == 0 {
		return 1
	}
	return n
}

func unhex(t *testing.T, text string) []byte {
	t.Helper()
	b, err := hex.DecodeString(text)
	if err != nil {
		t.Fatalf("hostile-otlp.json: %q: %v", text, err)
	}
	return b
}

// request builds the case's bytes as the file describes.
func (c hostileCase) request(t *testing.T, secret string) []byte {
	t.Helper()
	if c.RequestHex != "" {
		return bytes.Repeat(unhex(t, c.RequestHex), orOne(c.RequestRepeat))
	}
	var spans [][]byte
	for _, spec := range c.Spans {
		name := unhex(t, spec.NameHex)
		if spec.Name != nil {
			name = []byte(*spec.Name)
		}
		var s []byte
		if spec.Bare {
			s = field(0x2a, name)
		} else {
			s = span(name, stringAttribute("user.email", []byte(secret)))
		}
		if spec.NestedValueDepth > 0 {
			value := field(0x0a, []byte(secret))
			for i := 0; i < spec.NestedValueDepth; i++ {
				value = field(0x2a, field(0x0a, value))
			}
			s = append(s, field(0x4a, append(field(0x0a, []byte("nested")), field(0x12, value)...))...)
		}
		s = append(s, bytes.Repeat(unhex(t, spec.RawHex), orOne(spec.RawRepeat))...)
		for i := 0; i < orOne(spec.Repeat); i++ {
			spans = append(spans, s)
		}
	}
	return traceRequest(spans...)
}
