package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// slogLine is what the logger's own JSON handler writes for line: what the access log must write.
func slogLine(t testing.TB, line accessLine) string {
	t.Helper()
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	line.path = loggedPath(line.path)
	if err := logger.Handler().Handle(context.Background(), line.record()); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func accessLogLine(t testing.TB, line accessLine, level slog.Level) string {
	t.Helper()
	var out bytes.Buffer
	newAccessLog(&out, level).write(context.Background(), line)
	return out.String()
}

func TestAccessLineIsWhatSlogWrites(t *testing.T) {
	end := time.Date(2026, 12, 3, 18, 30, 1, 123456789, time.FixedZone("CET", 3600))
	base := accessLine{end: end, id: "0123456789abcdef0123456789abcdef", method: "GET", path: "/v1/modules",
		remote: "127.0.0.1:40000", status: 200, bytes: 662, took: 1234567 * time.Nanosecond}
	cases := map[string]func(*accessLine){
		"plain":                func(*accessLine) {},
		"zero duration":        func(l *accessLine) { l.took = 0 },
		"sub-microsecond":      func(l *accessLine) { l.took = 999 },
		"one microsecond":      func(l *accessLine) { l.took = time.Microsecond },
		"long":                 func(l *accessLine) { l.took = 90 * time.Second },
		"whole second":         func(l *accessLine) { l.end = end.Truncate(time.Second) },
		"UTC":                  func(l *accessLine) { l.end = end.UTC() },
		"quote in path":        func(l *accessLine) { l.path = `/v1/modules/a"b` },
		"backslash":            func(l *accessLine) { l.path = `/a\b` },
		"control bytes":        func(l *accessLine) { l.path = "/a\b\f\n\r\t\x00\x1f" },
		"invalid UTF-8":        func(l *accessLine) { l.path = "/\xff\xfe" },
		"line separators":      func(l *accessLine) { l.path = "/\u2028\u2029" },
		"HTML":                 func(l *accessLine) { l.path = "/<script>&amp;" },
		"DEL":                  func(l *accessLine) { l.path = "/\x7f" },
		"non-ASCII":            func(l *accessLine) { l.path = "/modulé" },
		"long path, truncated": func(l *accessLine) { l.path = "/" + strings.Repeat("a", 1000) },
		"odd method":           func(l *accessLine) { l.method = `GE"T` },
		"IPv6 remote":          func(l *accessLine) { l.remote = "[::1]:40000" },
		"499":                  func(l *accessLine) { l.status = statusClientClosedRequest },
		"empty id":             func(l *accessLine) { l.id = "" },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			line := base
			change(&line)
			if got, want := accessLogLine(t, line, slog.LevelInfo), slogLine(t, line); got != want {
				t.Errorf("access log wrote\n%s\nslog writes\n%s", got, want)
			}
		})
	}
}

func TestAccessLogFollowsTheLoggersLevel(t *testing.T) {
	line := accessLine{end: time.Now(), method: "GET", path: "/healthz", remote: "127.0.0.1:1", status: 200}
	if got := accessLogLine(t, line, slog.LevelWarn); got != "" {
		t.Errorf("LOG_LEVEL=warn wrote an access line: %s", got)
	}
	if got := accessLogLine(t, line, slog.LevelDebug); got == "" {
		t.Error("LOG_LEVEL=debug wrote no access line")
	}
	var nilLog *accessLog
	nilLog.write(context.Background(), line) // writes nothing, does not panic
}

// FuzzAccessLineIsWhatSlogWrites holds the access log to slog's output for any strings a
// request may carry (go test -fuzz FuzzAccessLine).
func FuzzAccessLineIsWhatSlogWrites(f *testing.F) {
	f.Add("GET", "/v1/modules", "127.0.0.1:1", "abc", int64(1234567))
	f.Add("GET", "/a\"\\\b\x00\xff\u2028é", "[::1]:2", "", int64(0))
	f.Fuzz(func(t *testing.T, method, path, remote, id string, took int64) {
		line := accessLine{end: time.Unix(1_700_000_000, took), id: id, method: method, path: path,
			remote: remote, status: 200, bytes: 10, took: time.Duration(took)}
		if got, want := accessLogLine(t, line, slog.LevelInfo), slogLine(t, line); got != want {
			t.Errorf("access log wrote\n%s\nslog writes\n%s", got, want)
		}
	})
}
