-- ArgoCD health of an mk8.io Stack. Runs in ArgoCD's Lua 5.1 sandbox: base, table, package
-- and a safe os only, so no string or math library and no string methods.
local hs = {}

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function message_or(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

-- Ready reasons the controller sets when nothing improves until a person acts: an invalid
-- selector, preset or bundle, a dependency that does not exist or forms a cycle, no
-- ClusterProfile or ArgoCD API, or a Stack naming another ArgoCD namespace than the operator's.
local needs_a_person = {
  InvalidSpec = true,
  UnknownDependency = true,
  DependencyCycle = true,
  ClusterInventoryMissing = true,
  ArgoCDUnavailable = true,
  ArgoCDNamespaceMismatch = true,
}

local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the controller to observe generation " .. generation
  else
    hs.message = "Waiting for the controller to observe this Stack"
  end
  return hs
end

local ready = find_condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "False" and needs_a_person[ready.reason] then
  hs.status = "Degraded"
  hs.message = message_or(ready, "The Stack needs attention")
  return hs
end

-- A Degraded Application on some cluster (which also pauses a rollout).
local degraded = find_condition(status.conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message_or(degraded, "An Application of the Stack is Degraded")
  return hs
end

-- Nothing selected is a valid, settled state: the Stack delivers to no cluster.
if ready ~= nil and ready.status == "False" and ready.reason == "NoClusterSelected" then
  hs.status = "Healthy"
  hs.message = message_or(ready, "No cluster selected")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_or(ready, "Ready")
  return hs
end

-- Any other reason (or none yet) is work the controller is still doing. A Stack has no
-- spec.paused, so it is never Suspended.
hs.status = "Progressing"
hs.message = message_or(ready, "Waiting for the Ready condition")
return hs
