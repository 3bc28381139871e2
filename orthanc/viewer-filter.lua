-- The read-only viewer Orthanc (viewer.json): refuses every HTTP request that could change
-- the database or the storage it shares with the cloud Orthanc. Loaded through "LuaScripts".
--
-- Orthanc 1.10 has no read-only switch. Orthanc calls IncomingHttpRequestFilter before it
-- routes any REST request (Orthanc Book, "Lua scripting", filtering incoming REST requests);
-- false makes Orthanc answer 403 Forbidden without running the request.
--
-- Allowed: GET (reads) and POST to the few read-only search routes that viewers (Orthanc
-- Explorer, Stone Web viewer) call with a body. Everything else is refused: POST /instances
-- (uploads), PUT (metadata, attachments), DELETE, and every other POST (modify, anonymize,
-- merge, jobs, /tools/execute-script, ...).

local READ_ONLY_POSTS = {
  ['/tools/find'] = true,
  ['/tools/lookup'] = true,
}

function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if method == 'GET' then
    return true
  end
  if method == 'POST' and READ_ONLY_POSTS[uri] then
    return true
  end
  print('viewer-filter.lua: refused ' .. method .. ' ' .. uri .. ' from ' .. ip)
  return false
end
