-- The hospital PACS (this Orthanc) forwards every instance it stores to the dicom-gateway:
-- a C-STORE to the modality "gateway" of orthanc.json, i.e. AE title DICOMGW at gateway:11112.
-- Loaded through "LuaScripts" in orthanc.json.
--
-- Orthanc calls OnStoredInstance once per new instance, whoever sent it (a modality, the
-- REST API, Orthanc Explorer). An instance Orthanc already had is not "new" and is not
-- forwarded again; resend a study by hand with
--   curl -u orthanc:orthanc -X POST http://localhost:8042/modalities/gateway/store -d '<study id>'
--
-- Orthanc does not retry a failed C-STORE. While the gateway is down, failures are printed to
-- Orthanc's log (look for "forward.lua"); resend those studies once it is back. The gateway
-- answers a C-STORE only once the instance is durable, so a success here means stored.

function OnStoredInstance(instanceId, tags, metadata, origin)
  -- Never forward what a Lua script itself stored (Orthanc's guard against routing loops).
  if origin ~= nil and origin['RequestOrigin'] == 'Lua' then
    return
  end
  local ok, err = pcall(SendToModality, instanceId, 'gateway')
  if not ok then
    print('forward.lua: C-STORE of instance ' .. instanceId .. ' to the gateway failed: ' .. tostring(err))
  end
end
