package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzScanXML: whatever scanXML lets through, a strict parser (go-webdav's
// encoding/xml Token loop) never finds nested deeper, or holding more
// elements and attributes, than the limits before it stops.
func FuzzScanXML(f *testing.F) {
	for _, s := range []string{
		`<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>`,
		strings.Repeat("<a>", 20), strings.Repeat("<a/>", 30), `<a b="1" c="2" d="3"><e f="4"/></a>`,
		"<a></b><c><c><c><c><c><c><c><c><c>", "<!-- <a><a> --><a>", "<![CDATA[<a><a>]]>", "",
	} {
		f.Add([]byte(s))
	}
	const maxDepth, maxElements = 8, 20
	f.Fuzz(func(t *testing.T, b []byte) {
		if scanXML(b, maxDepth, maxElements) != nil {
			return
		}
		d := xml.NewDecoder(bytes.NewReader(b))
		depth, count := 0, 0
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			switch e := tok.(type) {
			case xml.StartElement:
				depth++
				count += 1 + len(e.Attr)
				if depth > maxDepth || count > maxElements {
					t.Fatalf("scanXML let through %q: depth %d, %d elements and attributes", b, depth, count)
				}
			case xml.EndElement:
				depth--
			}
		}
	})
}
