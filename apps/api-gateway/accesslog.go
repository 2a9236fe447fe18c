package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLog writes the one line per request, byte for byte as slog's JSON handler writes the
// same record (tests hold it to that), without going through slog when it can: a line has
// always the same seven fields, and slog's general path (a record of attributes, each key
// escaped, each value switched on its kind, the float through json.Marshal) was half of what
// the gateway added to a catalog read. A line with a value to escape (a hostile path, an odd
// method) goes through slog's JSON handler on the same output.
type accessLog struct {
	out     io.Writer    // one Write per line: safe for concurrent use, as the logger's output is
	handler slog.Handler // slog's JSON handler on out, at the logger's level
}

// newAccessLog writes to out, the logger's output, when level (the logger's) allows Info. A
// nil accessLog writes nothing.
func newAccessLog(out io.Writer, level slog.Leveler) *accessLog {
	return &accessLog{out: out, handler: slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})}
}

// accessLine is what a request's line says.
type accessLine struct {
	end                      time.Time
	id, method, path, remote string
	status, bytes            int
	took                     time.Duration
}

// lineBuffers recycles the lines' buffers: a line is a few hundred bytes, written and done.
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// write writes line if the level allows Info; a failed write is lost, as slog loses it.
func (a *accessLog) write(ctx context.Context, line accessLine) {
	if a == nil || !a.handler.Enabled(ctx, slog.LevelInfo) {
		return
	}
	line.path = loggedPath(line.path)
	if !plain(line.id) || !plain(line.method) || !plain(line.path) || !plain(line.remote) {
		_ = a.handler.Handle(ctx, line.record())
		return
	}
	buf := lineBuffers.Get().(*[]byte)
	*buf = line.appendTo((*buf)[:0])
	_, _ = a.out.Write(*buf)
	lineBuffers.Put(buf)
}

// record is the line as slog's record. It is built here rather than by Logger.LogAttrs, which
// would also look up the caller's program counter for a source location the log does not show.
func (l accessLine) record() slog.Record {
	r := slog.NewRecord(l.end, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("request_id", l.id),
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int("bytes", l.bytes),
		slog.Float64("duration_ms", durationMS(l.took)),
		slog.String("remote", l.remote),
	)
	return r
}

// durationMS is a request's duration in milliseconds with microsecond precision.
func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// appendTo appends the line as slog.JSONHandler writes its record, for a line whose strings
// are plain.
func (l accessLine) appendTo(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = l.end.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendQuoted(b, l.id)
	b = append(b, `,"method":`...)
	b = appendQuoted(b, l.method)
	b = append(b, `,"path":`...)
	b = appendQuoted(b, l.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(l.bytes), 10)
	b = append(b, `,"duration_ms":`...)
	// 0 or at least 0.001, where encoding/json (which slog calls for a float) writes the
	// shortest 'f' form, as here.
	b = strconv.AppendFloat(b, durationMS(l.took), 'f', -1, 64)
	b = append(b, `,"remote":`...)
	b = appendQuoted(b, l.remote)
	return append(b, "}\n"...)
}

// plain tells a string JSON writes as it is, between quotes: printable ASCII, no quote, no
// backslash. What a request carries nearly always is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func appendQuoted(b []byte, plain string) []byte {
	b = append(b, '"')
	b = append(b, plain...)
	return append(b, '"')
}
