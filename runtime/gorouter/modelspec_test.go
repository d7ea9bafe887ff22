package main

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestOnlyTheModelSpecIsRewrittenAndEveryOtherByteKept(t *testing.T) {
	spec := protowire.AppendTag(nil, specName, protowire.BytesType)
	spec = protowire.AppendString(spec, "ranker")
	spec = protowire.AppendTag(spec, 15, protowire.Fixed32Type) // a field TF Serving may add one day
	spec = protowire.AppendFixed32(spec, 7)
	other := protowire.AppendTag(nil, 2, protowire.BytesType)
	other = protowire.AppendBytes(other, bytes.Repeat([]byte{0xff}, 300)) // not UTF-8, not ours: kept
	request := protowire.AppendTag(nil, requestModelSpec, protowire.BytesType)
	request = protowire.AppendBytes(request, spec)
	request = append(request, other...)
	head, err := ParseRequestHead(request)
	if err != nil {
		t.Fatal(err)
	}
	head.SetLabel("canary")
	out := head.Marshal()
	if !bytes.HasSuffix(out, other) {
		t.Error("the fields after model_spec changed")
	}
	again, err := ParseRequestHead(out)
	if err != nil || again.Spec.Name != "ranker" || again.Spec.VersionLabel != "canary" ||
		!bytes.Equal(again.Spec.unknown, spec[8:]) {
		t.Errorf("rewritten spec %+v %v", again.Spec, err)
	}
	if _, err := ParseRequestHead(request[:len(request)-1]); err == nil {
		t.Error("a truncated request was read")
	}
}
