// Package behalfapi holds the input and output shapes of behalf's
// extension operations, those served under /behalf/ in the restJson1 style
// of the AgentCore APIs. The server decodes and encodes them and the CLI
// sends and reads them, so both sides share one definition. Validation of
// inputs stays with the server.
package behalfapi

import (
	"fmt"
	"strconv"
	"time"
)

// Time is a timestamp encoded as epoch seconds with millisecond
// precision, the restJson1 default.
type Time time.Time

// MarshalJSON encodes t as epoch seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	return []byte(fmt.Sprintf("%d.%03d", tt.Unix(), tt.Nanosecond()/1e6)), nil
}

// UnmarshalJSON decodes epoch seconds.
func (t *Time) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("behalfapi: a time must be epoch seconds: %w", err)
	}
	sec := int64(f)
	*t = Time(time.Unix(sec, int64((f-float64(sec))*1e9)).UTC())
	return nil
}

// String formats t as RFC 3339 in UTC, to the second.
func (t Time) String() string { return time.Time(t).UTC().Format(time.RFC3339) }

// ListInput is the paging of a List operation.
type ListInput struct {
	NextToken  *string `json:"nextToken,omitempty"`
	MaxResults *int    `json:"maxResults,omitempty"`
}
