-- wrk: a short chat that does not stream, one token answered at once
-- (the stand-in's control headers; the instant upstream ignores them)
wrk.method = "POST"
wrk.body = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = "localhost"
wrk.headers["X-Source"] = "api"
wrk.headers["X-Standin-Tokens"] = "1"
wrk.headers["X-Standin-Delay-Ms"] = "0"
