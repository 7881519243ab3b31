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
-- Conditions users wait for rather than fix: a dependency, the organization, children that
-- are applied but do not work yet, a rollout queued or waiting for its stack or running.
local waiting = {
  WaitingForDependency = true, NoOrganization = true, Progressing = true, Queued = true,
  WaitingForStack = true, CachesNotSynced = true,
}
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
-- A finished rollout is a record: history is not a fault of what runs now. A failure is,
-- while no newer rollout of its stack completed (the operator says which did).
local finished = { completed = true, failed = true, cancelled = true, rolled_back = true }
if obj.kind == "Deployment" and status.phase == "failed" and status.supersededBy == nil then
  hs.status = "Degraded"
  hs.message = "rollout failed, the stack's latest: " .. (status.message or "")
  return hs
end
if obj.kind == "Deployment" and finished[status.phase] then
  hs.status = "Healthy"
  hs.message = "rollout " .. status.phase .. ((ready and ready.message and (": " .. ready.message)) or "")
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the Ready condition"
  return hs
end
if ready.status ~= "True" then
  return failed(ready)
end
-- Kept as asked, running nothing: a suspended Organization or Environment, a stopped
-- Application, an archived Stack.
local spec = obj.spec or {}
local resting
if (obj.kind == "Organization" or obj.kind == "Environment") and spec.isActive == false then
  resting = "suspended (isActive: false): its workloads run no pod and it takes no rollout"
elseif obj.kind == "Application" and spec.stopped == true then
  resting = "stopped: its workloads run no pod"
elseif obj.kind == "Stack" and spec.archived == true then
  resting = "archived: its applications run nothing and it takes no rollout"
end
if resting ~= nil then
  hs.status = "Suspended"
  hs.message = resting
  return hs
end
hs.status = "Healthy"
hs.message = ready.message or ""
return hs
