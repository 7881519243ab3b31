-- Argo CD health of a WindFlow object, from its Ready and Synced conditions and
-- observedGeneration (Crossplane's pattern). The same script serves every kind; a
-- Deployment (windflow.io) also reports its rollout phase.
local hs = {}
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "the operator has not reconciled the latest spec yet"
  return hs
end
local ready, synced
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Synced" then synced = condition end
end
-- Conditions users wait for rather than fix.
local waiting = { WaitingForDependency = true, NoOrganization = true }
local function failed(condition)
  if waiting[condition.reason] then
    hs.status = "Progressing"
  elseif condition.reason == "Paused" then
    hs.status = "Suspended"
  else
    hs.status = "Degraded"
  end
  hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
  return hs
end
if synced ~= nil and synced.status == "False" then
  return failed(synced)
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the Ready condition"
  return hs
end
if ready.status ~= "True" then
  return failed(ready)
end
if obj.kind == "Deployment" and status.phase ~= nil then
  local phases = {
    pending = "Progressing", running = "Progressing", completed = "Healthy",
    failed = "Degraded", cancelled = "Degraded", rolled_back = "Degraded",
  }
  hs.status = phases[status.phase] or "Progressing"
  hs.message = "rollout " .. status.phase
  return hs
end
hs.status = "Healthy"
hs.message = ready.message or ""
return hs
