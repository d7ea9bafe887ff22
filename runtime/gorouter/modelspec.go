package main

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The one part of TF Serving's Predict, Classify and Regress requests the router reads and writes: model_spec (field 1)
// with ModelSpec's field numbers (tensorflow_serving/apis/model.proto). Every other byte stays as received.
const (
	requestModelSpec   protowire.Number = 1
	specName           protowire.Number = 1
	specVersion        protowire.Number = 2 // google.protobuf.Int64Value, oneof version_choice
	specSignatureName  protowire.Number = 3
	specVersionLabel   protowire.Number = 4 // oneof version_choice
	int64ValueValue    protowire.Number = 1
	choiceNone                          = 0
	choiceVersion                       = 1
	choiceVersionLabel                  = 2
)

var errMalformed = errors.New("malformed protobuf")

// ModelSpec is a request's model_spec as protobuf merges it: repeated occurrences of field 1 are merged, the last
// member of the oneof on the wire wins, unknown fields are kept in order.
type ModelSpec struct {
	Name           string
	Choice         int
	Version        int64
	versionUnknown []byte // Int64Value's own unknown fields
	SignatureName  string
	VersionLabel   string
	unknown        []byte
}

// RequestHead is a request split into its model_spec and every other top-level field, byte for byte.
type RequestHead struct {
	Spec ModelSpec
	rest []byte
}

// ParseRequestHead splits request; errMalformed when protobuf (as the Python router's parser) refuses the bytes.
func ParseRequestHead(request []byte) (*RequestHead, error) {
	head := &RequestHead{}
	for b := request; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, errMalformed
		}
		if num == requestModelSpec && typ == protowire.BytesType {
			value, _ := protowire.ConsumeBytes(b[n:])
			if err := head.Spec.merge(value); err != nil {
				return nil, err
			}
		} else {
			head.rest = append(head.rest, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return head, nil
}

func (s *ModelSpec) merge(data []byte) error {
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return errMalformed
		}
		field := b[:n+m]
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(b[n:])
		}
		switch {
		case num == specName && typ == protowire.BytesType:
			if !utf8.Valid(value) {
				return errMalformed
			}
			s.Name = string(value)
		case num == specSignatureName && typ == protowire.BytesType:
			if !utf8.Valid(value) {
				return errMalformed
			}
			s.SignatureName = string(value)
		case num == specVersionLabel && typ == protowire.BytesType:
			if !utf8.Valid(value) {
				return errMalformed
			}
			s.VersionLabel = string(value)
			s.Choice = choiceVersionLabel
			s.Version, s.versionUnknown = 0, nil
		case num == specVersion && typ == protowire.BytesType:
			if s.Choice != choiceVersion {
				s.Version, s.versionUnknown = 0, nil
			}
			s.Choice = choiceVersion
			s.VersionLabel = ""
			if err := s.mergeVersion(value); err != nil {
				return err
			}
		default:
			s.unknown = append(s.unknown, field...)
		}
		b = b[n+m:]
	}
	return nil
}

func (s *ModelSpec) mergeVersion(data []byte) error {
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return errMalformed
		}
		if num == int64ValueValue && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b[n:])
			s.Version = int64(v)
		} else {
			s.versionUnknown = append(s.versionUnknown, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return nil
}

// Marshal writes the request back as protobuf serialises it: model_spec first (its fields in number order, then its
// unknown fields), then every other field in the order received.
func (h *RequestHead) Marshal() []byte {
	s := &h.Spec
	var spec []byte
	if s.Name != "" {
		spec = protowire.AppendTag(spec, specName, protowire.BytesType)
		spec = protowire.AppendString(spec, s.Name)
	}
	if s.Choice == choiceVersion {
		var version []byte
		if s.Version != 0 {
			version = protowire.AppendTag(version, int64ValueValue, protowire.VarintType)
			version = protowire.AppendVarint(version, uint64(s.Version))
		}
		version = append(version, s.versionUnknown...)
		spec = protowire.AppendTag(spec, specVersion, protowire.BytesType)
		spec = protowire.AppendBytes(spec, version)
	}
	if s.SignatureName != "" {
		spec = protowire.AppendTag(spec, specSignatureName, protowire.BytesType)
		spec = protowire.AppendString(spec, s.SignatureName)
	}
	if s.Choice == choiceVersionLabel {
		spec = protowire.AppendTag(spec, specVersionLabel, protowire.BytesType)
		spec = protowire.AppendString(spec, s.VersionLabel)
	}
	spec = append(spec, s.unknown...)
	out := make([]byte, 0, len(spec)+len(h.rest)+8)
	out = protowire.AppendTag(out, requestModelSpec, protowire.BytesType)
	out = protowire.AppendBytes(out, spec)
	return append(out, h.rest...)
}

// SetVersion names version (the pin header's); SetLabel names a label (the router's choice).
func (h *RequestHead) SetVersion(version int64) {
	h.Spec.Choice, h.Spec.Version, h.Spec.versionUnknown, h.Spec.VersionLabel = choiceVersion, version, nil, ""
}

func (h *RequestHead) SetLabel(label string) {
	h.Spec.Choice, h.Spec.VersionLabel, h.Spec.Version, h.Spec.versionUnknown = choiceVersionLabel, label, 0, nil
}
