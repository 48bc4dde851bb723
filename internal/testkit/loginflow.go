package testkit

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// LoginFlowClient follows the Nextcloud Login Flow v2 contract as the real
// clients do (read from DAVx⁵'s NextcloudLoginFlow and the desktop
// client's Flow2Auth): nothing more than they check is assumed.
type LoginFlowClient struct {
	HTTP      *http.Client
	UserAgent string // the client's name on the grant page

	// From Initiate.
	Login, PollEndpoint, Token string
}

// LoginFlowResult is a successful poll's answer.
type LoginFlowResult struct {
	Server      string `json:"server"`
	LoginName   string `json:"loginName"`
	AppPassword string `json:"appPassword"`
}

// InitiateURL makes base a Login Flow v2 URL as DAVx⁵ does: a URL that
// already ends in index.php/login/v2 is kept, one that ends in
// index.php/login/flow (v1) is rewritten, any other gets the v2 path
// appended.
func InitiateURL(base string) string {
	switch {
	case strings.HasSuffix(base, "index.php/login/v2"):
		return base
	case strings.HasSuffix(base, "index.php/login/flow"):
		return strings.TrimSuffix(base, "flow") + "v2"
	}
	return strings.TrimSuffix(base, "/") + "/index.php/login/v2"
}

// Initiate starts a flow at base with an empty POST body.
func (c *LoginFlowClient) Initiate(base string) error {
	var out struct {
		Poll struct {
			Token    string `json:"token"`
			Endpoint string `json:"endpoint"`
		} `json:"poll"`
		Login string `json:"login"`
	}
	status, err := c.post(InitiateURL(base), "", &out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("initiate: HTTP %d", status)
	}
	if out.Login == "" || out.Poll.Endpoint == "" || out.Poll.Token == "" {
		return fmt.Errorf("initiate: incomplete answer %+v", out)
	}
	for _, u := range []string{out.Login, out.Poll.Endpoint} {
		if _, err := url.ParseRequestURI(u); err != nil {
			return fmt.Errorf("initiate: %q is not a URL", u)
		}
	}
	c.Login, c.PollEndpoint, c.Token = out.Login, out.Poll.Endpoint, out.Poll.Token
	return nil
}

// Poll makes one poll, as DAVx⁵ does when the person comes back from the
// browser: status 200 gives the result; any other status is returned with
// a nil result (the desktop client polls again after a 404).
func (c *LoginFlowClient) Poll() (int, *LoginFlowResult, error) {
	var out LoginFlowResult
	status, err := c.post(c.PollEndpoint, "token="+url.QueryEscape(c.Token), &out)
	if err != nil || status != http.StatusOK {
		return status, nil, err
	}
	if out.Server == "" || out.LoginName == "" || out.AppPassword == "" {
		return status, nil, fmt.Errorf("poll: incomplete answer")
	}
	return status, &out, nil
}

// post sends body (a form, or empty) and decodes a 200 answer, which must
// be application/json (DAVx⁵ refuses anything else).
func (c *LoginFlowClient) post(u, body string, out any) (int, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return resp.StatusCode, fmt.Errorf("%s: Content-Type %q, want application/json", u, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: %v", u, err)
	}
	return resp.StatusCode, nil
}
