package settings

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodeJSON feeds arbitrary bodies to the decoder of every JSON request
// body. It must never panic, accept exactly what is one JSON object of
// known fields within the size limit, and refuse everything else with 400
// (or 415 for another media type) and a message.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"username":"alice","password":"secret"}`,
		`{"name":"My iPhone","scopes":["calendars"],"expiresAt":"2030-01-02T15:04:05Z"}`,
		`{"name":"x"}`, `{"name":""}`, `{}`, `null`, `[]`, `"x"`, `{"name":1}`, `{"name":"a"}{"name":"b"}`,
		`{"name":"\u0000"}`, `{"NAME":"x"}`, `{"name":"x","extra":1}`, "{\"name\":\"\xff\"}", ``, `{`, `{"scopes":[null]}`,
	} {
		f.Add(seed, "application/json")
	}
	f.Add(`{"name":"x"}`, "text/plain")
	f.Add(`{"name":"x"}`, "application/json; charset=utf-8")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		for _, dst := range []func() any{
			func() any { return new(signInRequest) },
			func() any { return new(createRequest) },
			func() any { return new(renameRequest) },
		} {
			v := dst()
			limited := http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(body)), maxBodyBytes)
			err := decodeBody(contentType, limited, v)
			if err != nil {
				if err.status != http.StatusBadRequest && err.status != http.StatusUnsupportedMediaType {
					t.Fatalf("status %d for %q", err.status, body)
				}
				if err.msg == "" || strings.Contains(err.msg, "\n") {
					t.Fatalf("unclear message %q", err.msg)
				}
				continue
			}
			// Accepted: the body is one valid JSON value within the limit,
			// and every field it holds is a known one.
			if len(body) > maxBodyBytes {
				t.Fatalf("accepted a %d-byte body", len(body))
			}
			if !json.Valid([]byte(body)) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			var fields map[string]json.RawMessage
			if json.Unmarshal([]byte(body), &fields) == nil {
				known, _ := json.Marshal(v)
				var knownFields map[string]json.RawMessage
				json.Unmarshal(known, &knownFields)
				for k := range fields {
					found := false
					for kk := range knownFields {
						if strings.EqualFold(k, kk) {
							found = true
						}
					}
					if !found {
						t.Fatalf("accepted unknown field %q in %q", k, body)
					}
				}
			} else if !bytes.Equal(bytes.TrimSpace([]byte(body)), []byte("null")) {
				t.Fatalf("accepted a body that is not an object: %q", body)
			}
		}
	})
}
