package main

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// rawCodec sends requests that are already encoded and keeps only the length of replies, so
// the load generator does no (de)serializing per call. It is named "proto" so the calls
// carry the content-type a generated stub sends (application/grpc+proto).
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot send a %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n, ok := v.(*int)
	if !ok {
		return fmt.Errorf("rawCodec: cannot receive into a %T", v)
	}
	*n = data.Len()
	return nil
}
