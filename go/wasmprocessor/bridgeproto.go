package wasmprocessor

// The messages of runtime/bridge/proto/bridge.proto, written and read with
// protowire: the bridge needs no generated code. Field numbers follow the
// .proto file (and runtime/bridge/src/proto.rs).

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

const bridgeService = "/wasmtel.bridge.v1.Bridge/"

// bridgeMessage is what bridgeCodec sends and receives.
type bridgeMessage interface {
	// marshal returns the encoded message as parts sent one after another
	// (a batch's bytes are sent from where they are, not copied).
	marshal() [][]byte
	// unmarshal decodes b, which the message may keep.
	unmarshal(b []byte) error
}

type loadRequest struct {
	name, reference, pluginConfigJSON, registryPolicyJSON string
}

type loadResponse struct{ pluginID uint64 }

type processRequest struct {
	pluginID uint64
	signal   signal
	otlp     []byte
	// Or the batch is in a shared-memory slot (sharedmem.go).
	slot                               uint32
	slotSize, slotTicket, slotInputLen uint64
	// thenPluginIDs run after pluginID, in order, on its output: a chain of
	// consecutive wasm processors in one call.
	thenPluginIDs []uint64
	// Or (pluginID 0) the batch goes to this segment's exporters.
	segmentID uint64
}

type processResponse struct {
	outcome outcome
	otlp    []byte
	// A replaced output is in the request's slot.
	inSlot        bool
	slotOutputLen uint64
}

// metricsRequest asks for a plugin's metrics, or (pluginID 0) a segment's.
type metricsRequest struct{ pluginID, segmentID uint64 }

type metricsResponse struct{ json []byte }

type unloadRequest struct{ pluginID uint64 }

type unloadResponse struct{}

type startSegmentRequest struct{ specJSON []byte }

type startSegmentResponse struct{ segmentID uint64 }

type stopSegmentRequest struct{ segmentID, timeoutMs uint64 }

type stopSegmentResponse struct{}

type nextOutputRequest struct{ segmentID, timeoutMs uint64 }

type nextOutputResponse struct {
	outputID uint64
	signal   uint32
	otlp     []byte
}

type answerOutputRequest struct {
	outputID uint64
	refused  uint32
	reason   string
}

type answerOutputResponse struct{}

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

func (m *loadRequest) marshal() [][]byte {
	var b []byte
	b = appendString(b, 1, m.name)
	b = appendString(b, 2, m.reference)
	b = appendString(b, 3, m.pluginConfigJSON)
	return [][]byte{appendString(b, 4, m.registryPolicyJSON)}
}

func (m *loadRequest) unmarshal([]byte) error { return errors.New("loadRequest is only sent") }

func (m *loadResponse) marshal() [][]byte { return nil }

func (m *loadResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		if number == 1 && typ == protowire.VarintType {
			m.pluginID = v
		}
		return nil
	})
}

func (m *processRequest) marshal() [][]byte {
	var head []byte
	head = appendVarint(head, 1, m.pluginID)
	head = appendVarint(head, 2, uint64(m.signal))
	head = appendVarint(head, 4, uint64(m.slot))
	head = appendVarint(head, 5, m.slotSize)
	head = appendVarint(head, 6, m.slotTicket)
	head = appendVarint(head, 7, m.slotInputLen)
	if len(m.thenPluginIDs) > 0 {
		var packed []byte
		for _, id := range m.thenPluginIDs {
			packed = protowire.AppendVarint(packed, id)
		}
		head = protowire.AppendTag(head, 8, protowire.BytesType)
		head = protowire.AppendBytes(head, packed)
	}
	head = appendVarint(head, 9, m.segmentID)
	if len(m.otlp) == 0 {
		return [][]byte{head}
	}
	head = protowire.AppendTag(head, 3, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(m.otlp)))
	return [][]byte{head, m.otlp}
}

func (m *processRequest) unmarshal([]byte) error { return errors.New("processRequest is only sent") }

func (m *processResponse) marshal() [][]byte { return nil }

func (m *processResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, value []byte, v uint64) error {
		switch {
		case number == 1 && typ == protowire.VarintType:
			if v > uint64(outcomeExported) {
				return fmt.Errorf("unknown outcome %d", v)
			}
			m.outcome = outcome(v)
		case number == 2 && typ == protowire.BytesType:
			m.otlp = value
		case number == 3 && typ == protowire.VarintType:
			m.inSlot = v != 0
		case number == 4 && typ == protowire.VarintType:
			m.slotOutputLen = v
		}
		return nil
	})
}

func (m *metricsRequest) marshal() [][]byte {
	return [][]byte{appendVarint(appendVarint(nil, 1, m.pluginID), 2, m.segmentID)}
}

func (m *metricsRequest) unmarshal([]byte) error { return errors.New("metricsRequest is only sent") }

func (m *metricsResponse) marshal() [][]byte { return nil }

func (m *metricsResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, value []byte, _ uint64) error {
		if number == 1 && typ == protowire.BytesType {
			m.json = value
		}
		return nil
	})
}

func (m *unloadRequest) marshal() [][]byte { return [][]byte{appendVarint(nil, 1, m.pluginID)} }

func (m *unloadRequest) unmarshal([]byte) error { return errors.New("unloadRequest is only sent") }

func (m *unloadResponse) marshal() [][]byte { return nil }

func (m *unloadResponse) unmarshal([]byte) error { return nil }

// bridgeCodec carries bridgeMessages as protobuf (grpc's CodecV2: a batch
// is sent from its own buffer, and a response is materialised once, into
// memory the message keeps).
type bridgeCodec struct{}

func (bridgeCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(bridgeMessage)
	if !ok {
		return nil, fmt.Errorf("bridge codec: cannot marshal %T", v)
	}
	parts := m.marshal()
	out := make(mem.BufferSlice, len(parts))
	for i, part := range parts {
		out[i] = mem.SliceBuffer(part)
	}
	return out, nil
}

func (bridgeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(bridgeMessage)
	if !ok {
		return fmt.Errorf("bridge codec: cannot unmarshal into %T", v)
	}
	return m.unmarshal(data.Materialize())
}

func (bridgeCodec) Name() string { return "proto" }

func (m *startSegmentRequest) marshal() [][]byte { return [][]byte{appendBytes(nil, 1, m.specJSON)} }

func (m *startSegmentRequest) unmarshal([]byte) error {
	return errors.New("startSegmentRequest is only sent")
}

func (m *startSegmentResponse) marshal() [][]byte { return nil }

func (m *startSegmentResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		if number == 1 && typ == protowire.VarintType {
			m.segmentID = v
		}
		return nil
	})
}

func (m *stopSegmentRequest) marshal() [][]byte {
	return [][]byte{appendVarint(appendVarint(nil, 1, m.segmentID), 2, m.timeoutMs)}
}

func (m *stopSegmentRequest) unmarshal([]byte) error {
	return errors.New("stopSegmentRequest is only sent")
}

func (m *stopSegmentResponse) marshal() [][]byte { return nil }

func (m *stopSegmentResponse) unmarshal([]byte) error { return nil }

func (m *nextOutputRequest) marshal() [][]byte {
	return [][]byte{appendVarint(appendVarint(nil, 1, m.segmentID), 2, m.timeoutMs)}
}

func (m *nextOutputRequest) unmarshal([]byte) error {
	return errors.New("nextOutputRequest is only sent")
}

func (m *nextOutputResponse) marshal() [][]byte { return nil }

func (m *nextOutputResponse) unmarshal(b []byte) error {
	return eachField(b, func(number protowire.Number, _ protowire.Type, value []byte, varint uint64) error {
		switch number {
		case 1:
			m.outputID = varint
		case 2:
			m.signal = uint32(varint)
		case 3:
			m.otlp = value // Materialize made it ours
		}
		return nil
	})
}

func (m *answerOutputRequest) marshal() [][]byte {
	return [][]byte{appendString(appendVarint(appendVarint(nil, 1, m.outputID), 2, uint64(m.refused)), 3, m.reason)}
}

func (m *answerOutputRequest) unmarshal([]byte) error {
	return errors.New("answerOutputRequest is only sent")
}

func (m *answerOutputResponse) marshal() [][]byte { return nil }

func (m *answerOutputResponse) unmarshal([]byte) error { return nil }
