-- Argo CD health of a Croupier object (DecisionPolicy, ModelDeployment, Experiment: the same rules for every kind).
-- The operator writes status.observedGeneration and the conditions Ready, Progressing and Degraded (docs/gitops.md;
-- kstatus's Reconciling and Stalled follow from them and add nothing here).
--   no status yet, or status for an older generation      -> Progressing
--   Degraded=True                                         -> Degraded    (rollout stalled, rollback, SRM, guardrail, ...)
--   Progressing=True, or Ready Unknown                    -> Progressing (rollout, canary steps, InsufficientTraffic)
--   Ready=True for the current generation                 -> Healthy
--   settled but not Ready (scaled to zero)                -> Suspended
local hs = {}

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.reason .. ": " .. condition.message
  end
  return condition.reason
end

local generation = obj.metadata.generation
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first status"
  return hs
end
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local ready, progressing, degraded = conditions["Ready"], conditions["Progressing"], conditions["Degraded"]

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = describe(ready)
  return hs
end
hs.status = "Suspended"
hs.message = describe(ready)
return hs
