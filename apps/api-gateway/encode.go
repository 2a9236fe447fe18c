package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// encode writes v as the JSON response body with the given status.
func encode[T any](w http.ResponseWriter, status int, v T) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}

// jsonBody is a response body encoded once and written many times by writeJSON, with the
// values of its Content-Type and Content-Length headers, also made once.
type jsonBody struct {
	body          []byte
	contentLength []string
}

// jsonContentType is the Content-Type header's value of every JSON answer. The header maps of
// many responses share it: none of them changes it in place (Header.Set and Add replace or
// extend a value slice, never write into it).
var jsonContentType = []string{"application/json"}

// encodedJSON is v as encode writes it (with the trailing newline), for a body encoded once
// and written many times by writeJSON.
func encodedJSON[T any](v T) jsonBody {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		// Only the contract's own types of strings are encoded so, and those always encode.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return jsonBody{body: b.Bytes(), contentLength: []string{strconv.Itoa(b.Len())}}
}

// writeJSON writes body, already encoded, as the JSON response body with the given status.
// Its header values are shared, not made anew per request (see jsonContentType).
func writeJSON(w http.ResponseWriter, status int, body jsonBody) {
	h := w.Header()
	// Canonical keys, set without canonicalizing them again on every request.
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = body.contentLength
	w.WriteHeader(status)
	_, _ = w.Write(body.body)
}

// isJSON tells whether a Content-Type header names application/json (parameters allowed).
func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

// validator is a decoded request body that can check itself; an empty map means valid.
type validator interface {
	Valid() (problems map[string]string)
}

// errBodyTooLarge is returned by decodeValid when the body exceeds its byte limit.
type errBodyTooLarge struct{ limit int64 }

func (e errBodyTooLarge) Error() string {
	return fmt.Sprintf("request body is larger than %d bytes", e.limit)
}

// decodeValid decodes exactly one JSON object from r's body, at most limit bytes, then
// validates it. The object's keys must be T's JSON field names exactly (encoding/json alone
// would match them case-insensitively and keep the last of duplicate keys). Every error is
// safe to show the caller.
func decodeValid[T validator](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var v T
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return v, errBodyTooLarge{limit: tooLarge.Limit}
		}
		return v, errors.New("request body could not be read")
	}
	if err := checkObjectKeys(data, jsonFieldNames[T]()); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if problems := v.Valid(); len(problems) > 0 {
		return v, fmt.Errorf("invalid request: %s", formatProblems(problems))
	}
	return v, nil
}

// checkObjectKeys checks that data is one JSON object, and nothing after it, whose keys are
// among allowed, spelled exactly so, each at most once.
func checkObjectKeys(data []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	if tok != json.Delim('{') {
		return errors.New("request body must be a JSON object")
	}
	// Past the opening brace, running out of input means the object was cut short.
	truncated := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return decodeError(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return truncated(err)
		}
		key, _ := tok.(string)
		switch {
		case !allowed[key]:
			return fmt.Errorf("unknown field %q", key)
		case seen[key]:
			return fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return truncated(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return truncated(err)
	}
	// Anything but whitespace after the object is a second value or garbage.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body must hold a single JSON object")
	}
	return nil
}

// jsonFieldNames is the set of JSON keys of struct type T, from its json tags.
func jsonFieldNames[T any]() map[string]bool {
	t := reflect.TypeFor[T]()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		names[name] = true
	}
	return names
}

func decodeError(err error) error {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge{limit: tooLarge.Limit}
	case errors.Is(err, io.EOF):
		return errors.New("request body must be a JSON object; it is empty")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syntax):
		return errors.New("request body is not valid JSON")
	case errors.As(err, &typeError):
		if typeError.Field == "" {
			return errors.New("request body must be a JSON object")
		}
		return fmt.Errorf("field %q must be a %s", typeError.Field, typeError.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errors.New("request body could not be decoded")
}

func formatProblems(problems map[string]string) string {
	keys := make([]string, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + problems[k]
	}
	return strings.Join(parts, "; ")
}

// writeError sends the contract's error body, stamped with the request's id.
func writeError(w http.ResponseWriter, r *http.Request, status int, code ErrorDetailCode, message string) {
	body := Error{Error: ErrorDetail{Code: code, Message: message, RequestId: requestIDOf(w)}}
	// The status line is already out if encoding fails; nothing more can be told the client.
	_ = encode(w, status, body)
}
