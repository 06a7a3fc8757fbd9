-- bench/http-post.lua: wrk script for bench/http.  Every request publishes one message of
-- MOM_BODY_BYTES bytes (default 100) with the token in MOM_TOKEN, on kept-alive connections.
local n = tonumber(os.getenv("MOM_BODY_BYTES") or "100")
wrk.method = "POST"
wrk.body = string.rep("x", n)
wrk.headers["Content-Type"] = "application/octet-stream"
local tok = os.getenv("MOM_TOKEN")
if tok ~= nil and tok ~= "" then
	wrk.headers["Authorization"] = "Bearer " .. tok
end
