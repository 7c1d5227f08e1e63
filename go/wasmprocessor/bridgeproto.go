package wasmprocessor

// The messages of runtime/bridge/proto/bridge.proto, written and read with
// protowire: the bridge needs no generated code. Field numbers follow the
// .proto file (and runtime/bridge/src/proto.rs).

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

const bridgeService = "/wasmtel.bridge.v1.Bridge/"

// bridgeMessage is what bridgeCodec sends and receives.
type bridgeMessage interface {
	marshal() []byte
	unmarshal([]byte) error
}

type loadRequest struct {
	name, reference, pluginConfigJSON, registryPolicyJSON string
}

type loadResponse struct{ pluginID uint64 }

type processRequest struct {
	pluginID uint64
	signal   signal
	otlp     []byte
}

type processResponse struct {
	outcome outcome
	otlp    []byte
}

type metricsRequest struct{ pluginID uint64 }

type metricsResponse struct{ json []byte }

type unloadRequest struct{ pluginID uint64 }

type unloadResponse struct{}

func appendString(b []byte, number protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, number, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, number protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, number, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, number protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, number, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// eachField calls field for every field of a message; unknown fields are skipped.
func eachField(b []byte, field func(number protowire.Number, typ protowire.Type, value []byte, varint uint64) error) error {
	for len(b) > 0 {
		number, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var value []byte
		var varint uint64
		switch typ {
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			value, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(number, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := field(number, typ, value, varint); err != nil {
			return err
		}
	}
	return nil
}

func (m *loadRequest) marshal() []byte {
	var b []byte
	b = appendString(b, 1, m.name)
	b = appendString(b, 2, m.reference)
	b = appendString(b, 3, m.pluginConfigJSON)
	return appendString(b, 4, m.registryPolicyJSON)
}

func (m *loadRequest) unmarshal([]byte) error { return errors.New("loadRequest is only sent") }

func (m *loadResponse) marshal() []byte { return nil }

func (m *loadResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		if number == 1 && typ == protowire.VarintType {
			m.pluginID = v
		}
		return nil
	})
}

func (m *processRequest) marshal() []byte {
	b := make([]byte, 0, len(m.otlp)+24)
	b = appendVarint(b, 1, m.pluginID)
	b = appendVarint(b, 2, uint64(m.signal))
	return appendBytes(b, 3, m.otlp)
}

func (m *processRequest) unmarshal([]byte) error { return errors.New("processRequest is only sent") }

func (m *processResponse) marshal() []byte { return nil }

func (m *processResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, value []byte, v uint64) error {
		switch {
		case number == 1 && typ == protowire.VarintType:
			if v > uint64(outcomeDropped) {
				return fmt.Errorf("unknown outcome %d", v)
			}
			m.outcome = outcome(v)
		case number == 2 && typ == protowire.BytesType:
			// grpc-go reuses its receive buffer after Unmarshal: this is the
			// output's one copy into Go memory.
			m.otlp = append([]byte(nil), value...)
		}
		return nil
	})
}

func (m *metricsRequest) marshal() []byte { return appendVarint(nil, 1, m.pluginID) }

func (m *metricsRequest) unmarshal([]byte) error { return errors.New("metricsRequest is only sent") }

func (m *metricsResponse) marshal() []byte { return nil }

func (m *metricsResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, value []byte, _ uint64) error {
		if number == 1 && typ == protowire.BytesType {
			m.json = append([]byte(nil), value...)
		}
		return nil
	})
}

func (m *unloadRequest) marshal() []byte { return appendVarint(nil, 1, m.pluginID) }

func (m *unloadRequest) unmarshal([]byte) error { return errors.New("unloadRequest is only sent") }

func (m *unloadResponse) marshal() []byte { return nil }

func (m *unloadResponse) unmarshal([]byte) error { return nil }

// bridgeCodec carries bridgeMessages as protobuf.
type bridgeCodec struct{}

func (bridgeCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(bridgeMessage)
	if !ok {
		return nil, fmt.Errorf("bridge codec: cannot marshal %T", v)
	}
	return m.marshal(), nil
}

func (bridgeCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(bridgeMessage)
	if !ok {
		return fmt.Errorf("bridge codec: cannot unmarshal into %T", v)
	}
	return m.unmarshal(data)
}

func (bridgeCodec) Name() string { return "proto" }
