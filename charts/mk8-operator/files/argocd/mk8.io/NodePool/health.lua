-- ArgoCD health of an mk8.io NodePool. Runs in ArgoCD's Lua 5.1 sandbox: base, table, package
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

-- Ready reasons the controller sets when nothing improves until a person acts: the spec or its
-- Cluster is wrong, a Secret or the release files are missing, or AWS refuses or reports the node
-- group broken. (Failed SSH nodes come with Degraded=True, checked first.)
local needs_a_person = {
  InvalidSpec = true,
  ClusterNotFound = true,
  ProviderMismatch = true,
  ProviderUnavailable = true,
  SecretMissing = true,
  ArtifactsUnavailable = true,
  BootstrapServerRemoved = true,
  NodegroupCreateFailed = true,
  NodegroupUnhealthy = true,
  OwnershipConflict = true,
  AwsRequestRejected = true,
}

local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the controller to observe generation " .. generation
  else
    hs.message = "Waiting for the controller to observe this NodePool"
  end
  return hs
end

local ready = find_condition(status.conditions, "Ready")

-- SSH pools: Degraded=True names the nodes that failed while the others went on.
local degraded = find_condition(status.conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message_or(degraded, "Some nodes failed")
  return hs
end
if ready ~= nil and ready.status == "False" and needs_a_person[ready.reason] then
  hs.status = "Degraded"
  hs.message = message_or(ready, "The NodePool needs attention")
  return hs
end

-- A paused NodePool is left alone by the controller, which then writes no Ready condition.
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "spec.paused is true: mk8 makes no change to this NodePool"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_or(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = message_or(ready, "Waiting for the Ready condition")
return hs
